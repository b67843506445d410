"""Restores in the admin, read-only: each restore, and its per-PV results in their own list."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from snapshots.restore.models import Restore, RestoreItem
from squirrel_site.admin_base import ReadOnlyAdmin
from squirrel_site.paginators import EstimatedCountPaginator


@admin.register(Restore)
class RestoreAdmin(ReadOnlyAdmin):
    # The undo point is on each restore's page: the list keeps to what fits a 1400 px screen.
    list_display = ["id", "snapshot", "created_by", "created_at", "finished_at", "status", "runs"]
    list_filter = ["status", "created_at"]
    search_fields = ["snapshot__title", "created_by__username"]
    date_hierarchy = "created_at"
    list_select_related = ["snapshot", "created_by"]
    readonly_fields = [
        "preview",
        "snapshot",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
        "undo_snapshot",
        "job",
        "status",
        "options",
        "runs",
        "writing_stage",
        "summary",
        "items",
    ]
    paginator = EstimatedCountPaginator
    show_full_result_count = False

    @admin.display(description="Per-PV results")
    def items(self, restore):
        # A 50,000-PV restore's items belong in their own paginated list, not inline.
        url = reverse("admin:snapshots_restoreitem_changelist") + f"?restore__id__exact={restore.pk}"
        return format_html('<a href="{}">{} PVs</a>', url, sum(restore.summary.values()) or "All")


@admin.register(RestoreItem)
class RestoreItemAdmin(ReadOnlyAdmin):
    """One PV of one restore: who restored it when, the value before, the target and the result."""

    list_display = [
        "pv_name",
        "restore",
        "restored_by",
        "written_at",
        "old_value",
        "target_value",
        "readback_value",
        "status",
        "message",
    ]
    list_filter = ["status", "stage"]
    search_fields = ["pv_name"]
    list_select_related = ["restore__created_by"]
    raw_id_fields = ["restore", "pv"]
    readonly_fields = [
        "restore",
        "pv",
        "pv_name",
        "readback_name",
        "stage",
        "wait_for_completion",
        "abs_tolerance",
        "rel_tolerance",
        "value_type",
        "old_value",
        "target_value",
        "readback_value",
        "status",
        "message",
        "written_at",
        "verified_at",
    ]
    fields = readonly_fields
    paginator = EstimatedCountPaginator
    show_full_result_count = False

    @admin.display(description="Restored by", ordering="restore__created_by__username")
    def restored_by(self, item):
        return item.restore.created_by
