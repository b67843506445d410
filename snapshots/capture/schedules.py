"""Scheduled snapshots: keeping celery-beat in step with SnapshotSchedule, running, pruning.

Changes to schedules, the snapshots they request and the ones retention deletes are recorded in
the audit log (the last two with no actor: the system acts, on the schedule owner's behalf).
"""

import json
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from jobs.models import Job, JobType
from jobs.registry import runner_for
from jobs.runner import run_job
from snapshots.capture.actions import delete_snapshots
from snapshots.capture.models import GOLDEN_TAG, Snapshot, SnapshotOrigin, SnapshotSchedule
from squirrel_site import audit
from squirrel_site.audit import AuditAction, AuditVia

TASK_NAME = "snapshots.scheduled_snapshot"


@transaction.atomic
def save_schedule(schedule: SnapshotSchedule, *, actor, via: str, changed: Iterable[str] = ()) -> SnapshotSchedule:
    """Save `schedule` and create or update the celery-beat task that runs it; `changed` names
    the fields that changed (for the audit entry)."""
    created = schedule.pk is None
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
    change = "created" if created else f"changed ({', '.join(changed)})" if changed else "saved unchanged"
    details = {"created": created, "changed": list(changed), **_settings(schedule)}
    audit.record(
        actor,
        AuditAction.SCHEDULE_CHANGED,
        f"Schedule “{schedule.name}” {change}",
        via=via,
        target=schedule,
        details=details,
    )
    return schedule


@transaction.atomic
def delete_schedule(schedule: SnapshotSchedule, *, actor, via: str) -> None:
    """Delete `schedule` and its celery-beat task; its snapshots stay (no longer pruned)."""
    task = schedule.periodic_task
    audit.record(
        actor,
        AuditAction.SCHEDULE_CHANGED,
        f"Schedule “{schedule.name}” deleted",
        via=via,
        target=schedule,
        details={"deleted": True, **_settings(schedule)},
    )
    schedule.delete()
    if task is not None:
        task.delete()


def _settings(schedule: SnapshotSchedule) -> dict:
    """What the audit log keeps of a schedule's settings."""
    return {
        "enabled": schedule.enabled,
        "crontab": str(schedule.crontab),
        "mode": schedule.mode,
        "keep_last": schedule.keep_last,
        "pv_set": str(schedule.pv_set) if schedule.pv_set_id else None,
        "selection": schedule.selection,
        "owner": str(schedule.owner),
    }


def schedule_selection(schedule: SnapshotSchedule) -> dict:
    """The PV selection a scheduled snapshot takes: its PV set's PVs (as the set is when it runs), or
    the filters it kept from before PV sets (empty: every PV)."""
    return {"pv_set": schedule.pv_set_id} if schedule.pv_set_id else schedule.selection


def run_schedule(schedule_id: int, key: str | None = None) -> Job | None:
    """Take one scheduled snapshot as a Job (run here, in the beat-triggered task), then prune.

    `key` names the request (the Celery task id): a redelivered task runs the same Job, which
    takes its snapshot at most once (jobs.runner), instead of taking a second snapshot.
    """
    schedule = SnapshotSchedule.objects.select_related("owner", "pv_set").filter(pk=schedule_id, enabled=True).first()
    if schedule is None:
        return None
    stamp = timezone.localtime().strftime("%Y-%m-%d %H:%M")
    data = {
        "title": f"{schedule.name} {stamp}",
        "comment": f"Scheduled by '{schedule.name}'.",
        "mode": schedule.mode,
        "tags": list(schedule.tags.values_list("name", flat=True)),
        "selection": schedule_selection(schedule),
        "origin": SnapshotOrigin.SCHEDULED,
        "schedule": schedule.pk,
    }
    # Run here, not sent: dispatched already, so the outbox relay sends it only if this worker dies.
    fields = {"type": JobType.SNAPSHOT, "created_by": schedule.owner, "dispatched_at": timezone.now()}
    with transaction.atomic():
        if key:
            job, created = Job.objects.get_or_create(key=key, defaults={**fields, "data": data})
        else:
            job, created = Job.objects.create(**fields, data=data), True
        if created:  # not for a redelivered task, which runs the same job
            audit.record(
                None,
                AuditAction.SNAPSHOT_REQUESTED,
                f"Snapshot “{data['title']}” requested by schedule “{schedule.name}” (job #{job.pk})",
                via=AuditVia.JOB,
                target=job,
                details={**data, "owner": str(schedule.owner)},
            )
    # The snapshot job's runner (snapshots.capture.runners), which applies the retention rule after the snapshot.
    run_job(job.id, runner_for(JobType.SNAPSHOT).run)
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
        # Through the relations restores add to Snapshot (snapshots.restore.models), which this
        # package does not import: NOT EXISTS on the restores table, as an Exists() would be.
        .exclude(restores__isnull=False)
        .exclude(undo_of_restores__isnull=False)
        .order_by("-created_at", "-id")
    )
    doomed = list(prunable.values_list("pk", flat=True)[schedule.keep_last :])
    if not doomed:
        return 0
    reason = {"schedule": schedule.pk, "reason": f"keep the last {schedule.keep_last}"}
    return delete_snapshots(Snapshot.objects.filter(pk__in=doomed), user=None, via=AuditVia.JOB, details=reason)
