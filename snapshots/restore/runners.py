"""The restore job types (jobs.registry.JobRunner): make a restore preview, execute a restore.
snapshots.apps registers them; snapshots.restore.tasks holds their Celery tasks."""

from django.conf import settings

from jobs.models import Job, JobType
from jobs.progress import ProgressReporter
from jobs.registry import JobRunner
from jobs.runner import JobExpired, JobFailure, JobRunningElsewhere
from pvs.models import PV
from snapshots.capture.models import Snapshot
from snapshots.capture.runners import creator, selected_pvs
from snapshots.restore.errors import RestoreBusy, RestoreError, RestoreExpired
from snapshots.restore.execute import execute_restore
from snapshots.restore.models import Restore, RestorePreview
from snapshots.restore.preview import preview_restore
from snapshots.restore.undo import undo_restore
from squirrel_site.bulk_sql import in_array


class PreviewRunner(JobRunner):
    """Make the restore preview described by job.data, reading live values over Channel Access
    where the monitor's cache cannot serve them (web processes never do: they enqueue this).

    data: {"snapshot": id, "selection": PVFilterSet parameters or null, or "pv_ids": [ids],
    "include_unchanged": bool} or {"undo_of": restore id}.

    Redelivered after its worker died: a preview that was saved is not made again (jobs.runner);
    one that was not is made anew, from the values live then.
    """

    job_type = JobType.PREVIEW
    task_name = "snapshots.preview"

    @classmethod
    def run(cls, job: Job, progress: ProgressReporter) -> int:
        data = job.data
        user = creator(job)
        progress(10, "Reading live values")
        try:
            if data.get("undo_of") is not None:
                restore = Restore.objects.filter(pk=data["undo_of"]).first()
                if restore is None:
                    raise JobFailure(f"Restore #{data['undo_of']} no longer exists.")
                return undo_restore(restore, user=user, job_id=job.pk).pk
            snapshot = Snapshot.objects.filter(pk=data["snapshot"]).first()
            if snapshot is None:
                raise JobFailure(f"Snapshot #{data['snapshot']} no longer exists.")
            if data.get("pv_ids") is not None:
                pvs = PV.objects.filter(pk__in=in_array(data["pv_ids"], "bigint"))
            else:
                pvs = selected_pvs(data["selection"]) if data.get("selection") else None
            preview = preview_restore(
                snapshot,
                created_by=user,
                pvs=pvs,
                include_unchanged=data.get("include_unchanged", False),
                job_id=job.pk,
            )
        except RestoreError as exc:
            raise JobFailure(str(exc)) from None
        return preview.pk


class RestoreRunner(JobRunner):
    """Execute (or resume) the restore of the preview named in job.data; it must start within
    SQUIRREL_RESTORE_START_DEADLINE seconds of its request, or never (the machine has moved on).

    Redelivered after its worker died: execute_restore resumes from its per-PV records, writing
    only the PVs not written yet; a second delivery while the first still runs steps aside.
    """

    job_type = JobType.RESTORE
    task_name = "snapshots.restore"

    @classmethod
    def start_deadline(cls) -> float | None:
        return settings.RESTORE_START_DEADLINE

    @classmethod
    def run(cls, job: Job, progress: ProgressReporter) -> int:
        user = creator(job)
        preview = RestorePreview.objects.filter(pk=job.data["preview"]).first()
        if preview is None:
            raise JobFailure(f"Restore preview {job.data['preview']} no longer exists.")
        try:
            restore = execute_restore(
                preview,
                user=user,
                job=job,
                progress=progress,
                verify=job.data.get("verify", True),
                verify_timeout=job.data.get("verify_timeout", 5.0),
            )
        except RestoreExpired:
            raise JobExpired from None
        except RestoreBusy:
            running = Restore.objects.filter(preview=preview).values_list("pk", "job_id").first()
            if running is not None and running[1] == job.id:
                raise JobRunningElsewhere from None  # this job, delivered twice: the first delivery runs it
            raise JobFailure(
                f"Restore #{running[0] if running else '?'} of preview #{preview.pk} is being executed by job "
                f"#{running[1] if running else '?'}; follow that job."
            ) from None
        except RestoreError as exc:
            raise JobFailure(str(exc)) from None
        return restore.id


RUNNERS = (PreviewRunner, RestoreRunner)
