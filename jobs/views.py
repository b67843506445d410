"""The job page: follow a snapshot or restore job until it ends, then go to what it produced."""

from django.contrib.auth.mixins import PermissionRequiredMixin
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.views import View

from jobs.models import Job, JobStatus, JobType

# The page that shows what a job of each type produced (its result_id).
RESULT_PAGES = {
    JobType.SNAPSHOT: "snapshots:detail",
    JobType.PREVIEW: "snapshots:restore_preview",
    JobType.RESTORE: "snapshots:restore",
}


class JobDetailView(PermissionRequiredMixin, View):
    """One job's progress (live over /ws/jobs/<id>/); a succeeded job redirects to its result.

    Only those who may see the job (Job.objects.visible_to) find it, as with its WebSocket.
    """

    permission_required = "jobs.view_job"

    def get(self, request, pk):
        job = get_object_or_404(Job.objects.visible_to(request.user).select_related("created_by"), pk=pk)
        if job.status == JobStatus.SUCCEEDED and job.result_id is not None:
            return redirect(RESULT_PAGES[job.type], job.result_id)
        return TemplateResponse(request, "jobs/detail.html", {"job": job})
