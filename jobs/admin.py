"""Jobs in the admin: read-only, since state changes belong to the Job's own methods."""

from django.contrib import admin

from jobs.models import Job
from squirrel_site.paginators import EstimatedCountPaginator


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "type", "status", "progress", "created_by", "created_at", "finished_at"]
    list_filter = ["type", "status"]
    search_fields = ["id", "error", "created_by__username"]
    list_select_related = ["created_by"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
