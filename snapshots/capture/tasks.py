"""Celery tasks: thin, take an id, delegate (a Job through its runner, snapshots.job_runners).

Workers that run these talk Channel Access: start them with --pool threads (or solo), never
prefork. The outbox relay (jobs.outbox) sends the job of a killed worker again, so its task runs
again; each runner says what that does (the restore service resumes from its per-PV records).
The task names are in the messages queued: they stay as they are across upgrades.
"""

from celery import shared_task

from jobs.runner import run_job
from snapshots.capture.runners import PreviewRunner, RestoreRunner, SnapshotRunner
from snapshots.capture.schedules import TASK_NAME as SCHEDULED_SNAPSHOT_TASK
from snapshots.capture.schedules import run_schedule


@shared_task(name=SnapshotRunner.task_name)
def take_snapshot_task(job_id: int) -> None:
    """Take a snapshot (Job type snapshot)."""
    run_job(job_id, SnapshotRunner.run)


@shared_task(name=PreviewRunner.task_name)
def preview_task(job_id: int) -> None:
    """Make a restore preview that needs Channel Access reads (Job type preview)."""
    run_job(job_id, PreviewRunner.run)


@shared_task(name=RestoreRunner.task_name)
def restore_task(job_id: int) -> None:
    """Execute or resume a restore (Job type restore)."""
    run_job(job_id, RestoreRunner.run)


@shared_task(name=SCHEDULED_SNAPSHOT_TASK, bind=True)
def scheduled_snapshot_task(self, schedule_id: int) -> None:
    """Take one snapshot of a SnapshotSchedule (sent by celery beat) and apply its retention.

    The task id keys the job, so a redelivery of this message takes no second snapshot.
    """
    run_schedule(schedule_id, key=f"scheduled-snapshot:{self.request.id}" if self.request.id else None)
