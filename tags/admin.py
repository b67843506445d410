"""Tag groups with their tags inline; tags searchable for the PV form's autocomplete.

Saves and deletions, inline ones included, go through tags.services, which audits each.
"""

from django.contrib import admin

from squirrel_site.audit import AuditVia
from tags import services
from tags.models import Tag, TagGroup


class TagInline(admin.TabularInline):
    model = Tag
    fields = ["name", "description"]
    extra = 1


class VocabularyAdmin(admin.ModelAdmin):
    """Saves and deletes tags or tag groups through tags.services."""

    def save_model(self, request, obj, form, change):
        save = services.update if change else services.create
        save(obj, actor=request.user, via=AuditVia.ADMIN)

    def delete_model(self, request, obj):
        self.delete_queryset(request, type(obj).objects.filter(pk=obj.pk))

    def delete_queryset(self, request, queryset):
        services.delete(queryset, actor=request.user, via=AuditVia.ADMIN)


@admin.register(TagGroup)
class TagGroupAdmin(VocabularyAdmin):
    list_display = ["name", "description", "tag_count"]
    search_fields = ["name", "description"]
    inlines = [TagInline]
    ordering = ["name"]

    def get_queryset(self, request):
        return super().get_queryset(request).with_tag_counts()

    @admin.display(description="tags", ordering="tag_count")
    def tag_count(self, group: TagGroup) -> int:
        return group.tag_count

    def save_formset(self, request, form, formset, change):
        # commit=False hands over the new, changed and deleted tags instead of saving them.
        formset.save(commit=False)
        for tag in formset.deleted_objects:
            services.delete(Tag.objects.filter(pk=tag.pk), actor=request.user, via=AuditVia.ADMIN)
        for tag in formset.new_objects:
            services.create(tag, actor=request.user, via=AuditVia.ADMIN)
        for tag, _ in formset.changed_objects:
            services.update(tag, actor=request.user, via=AuditVia.ADMIN)


@admin.register(Tag)
class TagAdmin(VocabularyAdmin):
    list_display = ["name", "group", "description", "pv_count"]
    list_filter = ["group"]
    search_fields = ["name", "group__name"]
    list_select_related = ["group"]
    # Explicit: with the count annotation (GROUP BY) Django ignores the model's default ordering.
    ordering = ["group__name", "name"]

    def get_queryset(self, request):
        return super().get_queryset(request).with_pv_counts()

    @admin.display(description="PVs", ordering="pv_count")
    def pv_count(self, tag: Tag) -> int:
        return tag.pv_count
