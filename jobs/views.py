"""The job page: follow a snapshot or restore job until it ends, then go to what it produced."""

from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.views import View

from jobs.models import Job, JobStatus, JobType

# The page that shows what a job of each type produced (its result_id).
RESULT_PAGES = {
    JobType.SNAPSHOT: "snapshots:detail", JobType.PREVIEW: "snapshots:restore_preview", JobType.RESTORE: "snapshots:restore",
}


class JobDetailView(LoginRequiredMixin, View):
    """One job's progress (live over /ws/jobs/<id>/); a succeeded job redirects to its result.

    Only its creator and staff may see it, as with the job's WebSocket.
    """

    def get(self, request, pk):
        job = get_object_or_404(Job.objects.select_related("created_by"), pk=pk)
        if not (request.user.is_staff or job.created_by_id == request.user.id):
            raise Http404("No such job.")
        if job.status == JobStatus.SUCCEEDED and job.result_id is not None:
            return redirect(RESULT_PAGES[job.type], job.result_id)
        return TemplateResponse(request, "jobs/detail.html", {"job": job})
