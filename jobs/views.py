"""The job pages: the list of jobs (who asked for what, when, with what result), and one job
followed until it ends, then its result.

`jobs` imports no other app: the pages of what a job works on are named by URL name only.
"""

from django.contrib.auth.mixins import PermissionRequiredMixin
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import urlencode
from django.views import View

from jobs.filtersets import JobFilterSet
from jobs.models import Job, JobStatus, JobType
from squirrel_site.pages import offset_page, with_query

# The page that shows what a job of each type produced (its result_id), and what to call it.
RESULT_PAGES = {
    JobType.SNAPSHOT: "snapshots:detail",
    JobType.PREVIEW: "snapshots:restore_preview",
    JobType.RESTORE: "snapshots:restore",
}
RESULT_NAMES = {JobType.SNAPSHOT: "Snapshot", JobType.PREVIEW: "Preview", JobType.RESTORE: "Restore"}
JOBS_PER_PAGE = 50


def _int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def job_subject(job: Job) -> tuple[str, str]:
    """What the job works on, as (text, link or ""), from its parameters."""
    data = job.data if isinstance(job.data, dict) else {}
    if job.type == JobType.SNAPSHOT:
        title = data.get("title")
        return (f"“{title}”" if isinstance(title, str) and title else "A snapshot"), ""
    if job.type == JobType.PREVIEW:
        if (restore := _int(data.get("undo_of"))) is not None:
            return f"Undo of restore #{restore}", reverse("snapshots:restore", args=[restore])
        if (snapshot := _int(data.get("snapshot"))) is not None:
            return f"Restore preview of snapshot #{snapshot}", reverse("snapshots:detail", args=[snapshot])
        return "A restore preview", ""
    if (preview := _int(data.get("preview"))) is not None:
        return f"Executes preview #{preview}", reverse("snapshots:restore_preview", args=[preview])
    return "A restore", ""


def job_result(job: Job) -> tuple[str, str]:
    """What the job produced, as (text, link), once it succeeded; ("", "") before."""
    if job.status != JobStatus.SUCCEEDED or job.result_id is None:
        return "", ""
    return f"{RESULT_NAMES[job.type]} #{job.result_id}", reverse(RESULT_PAGES[job.type], args=[job.result_id])


class JobListView(PermissionRequiredMixin, View):
    """The jobs one may follow (Job.objects.visible_to), newest first, filtered and paged by offset
    (no count: scheduled snapshots make many jobs)."""

    permission_required = "jobs.view_job"

    def get(self, request):
        jobs = Job.objects.visible_to(request.user).select_related("created_by").order_by("-id")
        filterset = JobFilterSet(request.GET, queryset=jobs)
        page = offset_page(request.GET, filterset.qs if filterset.is_valid() else jobs.none(), size=JOBS_PER_PAGE)
        context = {
            "filterset": filterset,
            "page": page,
            "rows": [(job, job_subject(job), job_result(job)) for job in page.rows],
            "page_query": with_query(request.GET, page=None),
        }
        return TemplateResponse(request, "jobs/list.html", context, status=200 if filterset.is_valid() else 400)


class JobDetailView(PermissionRequiredMixin, View):
    """One job's progress (live over /ws/jobs/<id>/); a succeeded job redirects to its result.

    Only those who may see the job (Job.objects.visible_to) find it, as with its WebSocket.
    """

    permission_required = "jobs.view_job"

    def get(self, request, pk):
        job = get_object_or_404(Job.objects.visible_to(request.user).select_related("created_by"), pk=pk)
        if (query := job.comparison_query()) is not None:  # taken to be compared: open the comparison
            return redirect(f"{reverse('snapshots:compare')}?{urlencode(query)}")
        if job.status == JobStatus.SUCCEEDED and job.result_id is not None:
            return redirect(RESULT_PAGES[job.type], job.result_id)
        return TemplateResponse(request, "jobs/detail.html", {"job": job, "subject": job_subject(job)})
