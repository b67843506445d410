"""Celery tasks of restoring: thin, take a job's id, delegate to its runner (snapshots.restore.runners).

Workers that run these talk Channel Access: start them with --pool threads (or solo), never
prefork. The outbox relay (jobs.outbox) sends the job of a killed worker again, so its task runs
again; each runner says what that does (the restore service resumes from its per-PV records).
The task names are in the messages queued: they stay as they are across upgrades.
"""

from celery import shared_task

from jobs.runner import run_job
from snapshots.restore.runners import PreviewRunner, RestoreRunner


@shared_task(name=PreviewRunner.task_name)
def preview_task(job_id: int) -> None:
    """Make a restore preview that needs Channel Access reads (Job type preview)."""
    run_job(job_id, PreviewRunner.run)


@shared_task(name=RestoreRunner.task_name)
def restore_task(job_id: int) -> None:
    """Execute or resume a restore (Job type restore)."""
    run_job(job_id, RestoreRunner.run)
