"""Tag groups with their tags inline; tags searchable for the PV form's autocomplete."""

from django.contrib import admin
from django.db.models import Count

from tags.models import Tag, TagGroup


class TagInline(admin.TabularInline):
    model = Tag
    fields = ["name", "description"]
    extra = 1


@admin.register(TagGroup)
class TagGroupAdmin(admin.ModelAdmin):
    list_display = ["name", "description", "tag_count"]
    search_fields = ["name", "description"]
    inlines = [TagInline]
    ordering = ["name"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(tag_count=Count("tags"))

    @admin.display(description="tags", ordering="tag_count")
    def tag_count(self, group: TagGroup) -> int:
        return group.tag_count


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["name", "group", "description", "pv_count"]
    list_filter = ["group"]
    search_fields = ["name", "group__name"]
    list_select_related = ["group"]
    # Explicit: with the count annotation (GROUP BY) Django ignores the model's default ordering.
    ordering = ["group__name", "name"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("group").annotate(pv_count=Count("pvs"))

    @admin.display(description="PVs", ordering="pv_count")
    def pv_count(self, tag: Tag) -> int:
        return tag.pv_count
