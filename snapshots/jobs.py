"""Job handlers: turn a Job's parameters into one service call (snapshot, restore)."""

from django.contrib.auth import get_user_model

from jobs.models import Job
from jobs.runner import JobExpired, JobFailure, JobRunningElsewhere
from pvs.filtersets import PVFilterSet
from pvs.models import PV
from squirrel_site.bulk_sql import in_array


def selection_problems(selection) -> dict | str | None:
    """Why `selection` is not a valid PV selection (PVFilterSet parameters), or None."""
    if not isinstance(selection, dict):
        return 'A selection is an object of PV filters, e.g. {"tag": [3]}.'
    filterset = PVFilterSet(data=selection, queryset=PV.objects.all())
    unknown = set(selection) - set(filterset.filters)
    if unknown:
        return f"Unknown filters: {', '.join(sorted(unknown))}."
    if not filterset.is_valid():
        return filterset.errors
    return None


def select_pvs(selection: dict):
    """The PVs a stored selection (PVFilterSet parameters) picks; all PVs when it is empty."""
    if not selection:
        return PV.objects.all()
    filterset = PVFilterSet(data=selection, queryset=PV.objects.all())
    if not filterset.is_valid():
        raise JobFailure(f"The PV selection is not valid: {filterset.errors.as_text()}")
    return filterset.qs


def snapshot_handler(job: Job, progress) -> int:
    """Take the snapshot described by job.data (title, comment, mode, tags, selection)."""
    from snapshots.services import SnapshotError, take_snapshot

    data = job.data
    user = get_user_model().objects.get(pk=job.created_by_id)
    try:
        snapshot = take_snapshot(
            title=data["title"],
            comment=data.get("comment", ""),
            created_by=user,
            pvs=select_pvs(data.get("selection", {})),
            mode=data.get("mode", "hybrid"),
            tags=data.get("tags", []),
            origin=data.get("origin", "manual"),
            progress=progress,
            schedule_id=data.get("schedule"),
            job_id=job.pk,
        )
    except SnapshotError as exc:
        raise JobFailure(str(exc)) from None
    if data.get("schedule"):
        from snapshots.models import SnapshotSchedule
        from snapshots.schedules import apply_retention

        schedule = SnapshotSchedule.objects.filter(pk=data["schedule"]).first()
        if schedule is not None:
            apply_retention(schedule)
    return snapshot.id


def preview_handler(job: Job, progress) -> int:
    """Make the restore preview described by job.data, reading live values over Channel Access
    where the monitor's cache cannot serve them (web processes never do: they enqueue this).

    data: {"snapshot": id, "selection": PVFilterSet parameters or null, or "pv_ids": [ids],
    "include_unchanged": bool} or {"undo_of": restore id}.
    """
    from snapshots.models import Restore, Snapshot
    from snapshots.restore import RestoreError, preview_restore, undo_restore

    data = job.data
    user = get_user_model().objects.get(pk=job.created_by_id)
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
            pvs = select_pvs(data["selection"]) if data.get("selection") else None
        preview = preview_restore(
            snapshot, created_by=user, pvs=pvs, include_unchanged=data.get("include_unchanged", False), job_id=job.pk
        )
    except RestoreError as exc:
        raise JobFailure(str(exc)) from None
    return preview.pk


def restore_handler(job: Job, progress) -> int:
    """Execute (or resume) the restore of the preview named in job.data."""
    from snapshots.models import Restore, RestorePreview
    from snapshots.restore import RestoreBusy, RestoreError, RestoreExpired, execute_restore

    user = get_user_model().objects.get(pk=job.created_by_id)
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
