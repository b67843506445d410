"""Celery tasks of taking snapshots: thin, take an id, delegate (a Job through its runner,
snapshots.capture.runners; a schedule through snapshots.capture.schedules).

Workers that run these talk Channel Access: start them with --pool threads (or solo), never
prefork. The outbox relay (jobs.outbox) sends the job of a killed worker again, so its task runs
again; each runner says what that does. The task names are in the messages queued and in
django-celery-beat's PeriodicTask rows: they stay as they are across upgrades.
"""

from celery import shared_task

from jobs.runner import run_job
from snapshots.capture.runners import SnapshotRunner
from snapshots.capture.schedules import TASK_NAME as SCHEDULED_SNAPSHOT_TASK
from snapshots.capture.schedules import run_schedule


@shared_task(name=SnapshotRunner.task_name)
def take_snapshot_task(job_id: int) -> None:
    """Take a snapshot (Job type snapshot)."""
    run_job(job_id, SnapshotRunner.run)


@shared_task(name=SCHEDULED_SNAPSHOT_TASK, bind=True)
def scheduled_snapshot_task(self, schedule_id: int) -> None:
    """Take one snapshot of a SnapshotSchedule (sent by celery beat) and apply its retention.

    The task id keys the job, so a redelivery of this message takes no second snapshot.
    """
    run_schedule(schedule_id, key=f"scheduled-snapshot:{self.request.id}" if self.request.id else None)
