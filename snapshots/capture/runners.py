"""The job type of taking a snapshot (jobs.registry.JobRunner), and what every runner of the app
needs: the job's creator, its PV selection. A runner turns a Job's parameters into one service call;
snapshots.apps registers the runners, and each package's tasks module holds their Celery tasks."""

from datetime import datetime

from django.contrib.auth import get_user_model

from jobs.models import Job, JobType
from jobs.progress import ProgressReporter
from jobs.registry import JobRunner
from jobs.runner import JobFailure
from pvs.selections import InvalidSelection, select_pvs
from snapshots.capture.models import SnapshotSchedule
from snapshots.capture.schedules import apply_retention
from snapshots.capture.services import SnapshotError, take_snapshot


def creator(job: Job):
    """The user who asked for the job."""
    return get_user_model().objects.get(pk=job.created_by_id)


def selected_pvs(selection: dict):
    """select_pvs, its refusal of a selection no longer valid told to the operator."""
    try:
        return select_pvs(selection)
    except InvalidSelection as exc:
        raise JobFailure(str(exc)) from None


class SnapshotRunner(JobRunner):
    """Take the snapshot described by job.data (title, comment, mode, tags, selection, origin,
    schedule; `at`, an ISO 8601 time with its offset, for a snapshot from the archive), then apply
    its schedule's retention rule.

    Redelivered after its worker died: take_snapshot saves the job's result with the snapshot, so
    a snapshot that was saved is not taken again (jobs.runner); one that was not is taken anew.
    """

    job_type = JobType.SNAPSHOT
    task_name = "snapshots.take_snapshot"

    @classmethod
    def run(cls, job: Job, progress: ProgressReporter) -> int:
        data = job.data
        try:
            at = datetime.fromisoformat(data["at"]) if data.get("at") else None
        except (TypeError, ValueError):
            raise JobFailure(f"The job's time {data['at']!r} is not an ISO 8601 time.") from None
        try:
            snapshot = take_snapshot(
                title=data["title"],
                comment=data.get("comment", ""),
                created_by=creator(job),
                pvs=selected_pvs(data.get("selection", {})),
                mode=data.get("mode", "hybrid"),
                tags=data.get("tags", []),
                origin=data.get("origin", "manual"),
                progress=progress,
                schedule_id=data.get("schedule"),
                job_id=job.pk,
                at=at,
            )
        except SnapshotError as exc:
            raise JobFailure(str(exc)) from None
        if data.get("schedule"):
            schedule = SnapshotSchedule.objects.filter(pk=data["schedule"]).first()
            if schedule is not None:
                apply_retention(schedule)
        return snapshot.id


RUNNERS = (SnapshotRunner,)
