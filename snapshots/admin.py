"""Snapshots in the admin: browse and label; values are immutable once written."""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from snapshots.models import Snapshot, SnapshotTag
from squirrel_site.paginators import EstimatedCountPaginator


@admin.register(SnapshotTag)
class SnapshotTagAdmin(admin.ModelAdmin):
    list_display = ["name", "protected", "description"]
    search_fields = ["name"]


class SnapshotAdminForm(forms.ModelForm):
    """Refuses changes to protected tags (golden) unless the user is an administrator."""

    user = None

    class Meta:
        model = Snapshot
        fields = ["title", "comment", "tags"]

    def clean_tags(self):
        tags = self.cleaned_data["tags"]
        if self.user is not None and not self.user.is_superuser:
            before = {t.pk for t in self.instance.tags.filter(protected=True)} if self.instance.pk else set()
            after = {t.pk for t in tags if t.protected}
            if before != after:
                raise ValidationError("Only administrators may add or remove protected tags such as golden.")
        return tags


@admin.register(Snapshot)
class SnapshotAdmin(admin.ModelAdmin):
    form = SnapshotAdminForm
    list_display = ["title", "created_at", "created_by", "mode", "origin", "pv_count", "disconnected_count"]
    list_filter = ["mode", "origin", "tags", "created_at"]
    search_fields = ["title", "comment", "created_by__username"]
    date_hierarchy = "created_at"
    readonly_fields = ["created_by", "created_at", "mode", "origin", "pv_count", "disconnected_count"]
    fields = ["title", "comment", "tags", *readonly_fields]
    filter_horizontal = ["tags"]
    list_select_related = ["created_by"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.user = request.user
        return form

    def has_add_permission(self, request) -> bool:
        # Snapshots come from a job (take or import), never from a blank form.
        return False
