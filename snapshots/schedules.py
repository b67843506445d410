"""Scheduled snapshots: keeping celery-beat in step with SnapshotSchedule, running, pruning."""

import json

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from jobs.models import Job, JobType
from jobs.runner import run_job
from snapshots.jobs import snapshot_handler
from snapshots.models import GOLDEN_TAG, Restore, Snapshot, SnapshotOrigin, SnapshotSchedule

TASK_NAME = "snapshots.scheduled_snapshot"


@transaction.atomic
def save_schedule(schedule: SnapshotSchedule) -> SnapshotSchedule:
    """Save `schedule` and create or update the celery-beat task that runs it."""
    schedule.save()
    task = schedule.periodic_task or PeriodicTask(task=TASK_NAME)
    task.name = f"Snapshot schedule {schedule.pk}: {schedule.name}"[:200]
    task.crontab = schedule.crontab
    task.kwargs = json.dumps({"schedule_id": schedule.pk})
    task.enabled = schedule.enabled
    task.save()
    if schedule.periodic_task_id != task.pk:
        schedule.periodic_task = task
        schedule.save(update_fields=["periodic_task"])
    return schedule


@transaction.atomic
def delete_schedule(schedule: SnapshotSchedule) -> None:
    """Delete `schedule` and its celery-beat task; its snapshots stay (no longer pruned)."""
    task = schedule.periodic_task
    schedule.delete()
    if task is not None:
        task.delete()


def run_schedule(schedule_id: int, key: str | None = None) -> Job | None:
    """Take one scheduled snapshot as a Job (run here, in the beat-triggered task), then prune.

    `key` names the request (the Celery task id): a redelivered task runs the same Job, which
    takes its snapshot at most once (jobs.runner), instead of taking a second snapshot.
    """
    schedule = SnapshotSchedule.objects.select_related("owner").filter(pk=schedule_id, enabled=True).first()
    if schedule is None:
        return None
    stamp = timezone.localtime().strftime("%Y-%m-%d %H:%M")
    data = {
        "title": f"{schedule.name} {stamp}", "comment": f"Scheduled by '{schedule.name}'.", "mode": schedule.mode,
        "tags": list(schedule.tags.values_list("name", flat=True)), "selection": schedule.selection,
        "origin": SnapshotOrigin.SCHEDULED, "schedule": schedule.pk,
    }  # fmt: skip
    fields = {"type": JobType.SNAPSHOT, "created_by": schedule.owner}
    if key:
        job, _ = Job.objects.get_or_create(key=key, defaults={**fields, "data": data})
    else:
        job = Job.objects.create(**fields, data=data)
    run_job(job.id, snapshot_handler)  # which applies the retention rule after the snapshot
    job.refresh_from_db()
    return job


def apply_retention(schedule: SnapshotSchedule) -> int:
    """Delete the schedule's snapshots beyond its newest `keep_last`; returns how many.

    Golden snapshots and snapshots a restore refers to (as its target or its undo point) are
    never deleted, and do not count against the limit.
    """
    prunable = (
        Snapshot.objects.filter(schedule=schedule)
        .exclude(tags__name=GOLDEN_TAG)
        .exclude(Exists(Restore.objects.filter(snapshot=OuterRef("pk"))))
        .exclude(Exists(Restore.objects.filter(undo_snapshot=OuterRef("pk"))))
        .order_by("-created_at", "-id")
    )
    doomed = list(prunable.values_list("pk", flat=True)[schedule.keep_last :])
    if doomed:
        Snapshot.objects.filter(pk__in=doomed).delete()
    return len(doomed)
