"""Celery tasks: thin, take a Job id, delegate to snapshots.jobs through the job runner.

Workers that run these talk Channel Access: start them with --pool threads (or solo), never
prefork. The outbox relay (jobs.outbox) sends the job of a killed worker again, so its task runs
again; the restore service resumes from its per-PV records, so that is safe.
"""

from celery import shared_task

from jobs.runner import run_job
from snapshots.jobs import preview_handler, restore_handler, snapshot_handler


@shared_task(name="snapshots.take_snapshot")
def take_snapshot_task(job_id: int) -> None:
    """Take a snapshot (Job type snapshot)."""
    run_job(job_id, snapshot_handler)


@shared_task(name="snapshots.preview")
def preview_task(job_id: int) -> None:
    """Make a restore preview that needs Channel Access reads (Job type preview)."""
    run_job(job_id, preview_handler)


@shared_task(name="snapshots.restore")
def restore_task(job_id: int) -> None:
    """Execute or resume a restore (Job type restore)."""
    run_job(job_id, restore_handler)


@shared_task(name="snapshots.scheduled_snapshot", bind=True)
def scheduled_snapshot_task(self, schedule_id: int) -> None:
    """Take one snapshot of a SnapshotSchedule (sent by celery beat) and apply its retention.

    The task id keys the job, so a redelivery of this message takes no second snapshot.
    """
    from snapshots.schedules import run_schedule

    run_schedule(schedule_id, key=f"scheduled-snapshot:{self.request.id}" if self.request.id else None)
