"""Celery tasks: thin, take a Job id, delegate to snapshots.jobs through the job runner.

Workers that run these talk Channel Access: start them with --pool threads (or solo), never
prefork. acks_late + reject_on_worker_lost (settings) mean a killed worker's task runs again;
the restore service resumes from its per-PV records, so that is safe.
"""

from celery import shared_task

from jobs.runner import run_job
from snapshots.jobs import restore_handler, snapshot_handler


@shared_task(name="snapshots.take_snapshot")
def take_snapshot_task(job_id: int) -> None:
    """Take a snapshot (Job type snapshot)."""
    run_job(job_id, snapshot_handler)


@shared_task(name="snapshots.restore")
def restore_task(job_id: int) -> None:
    """Execute or resume a restore (Job type restore)."""
    run_job(job_id, restore_handler)


@shared_task(name="snapshots.scheduled_snapshot")
def scheduled_snapshot_task(schedule_id: int) -> None:
    """Take one snapshot of a SnapshotSchedule (sent by celery beat) and apply its retention."""
    from snapshots.schedules import run_schedule

    run_schedule(schedule_id)
