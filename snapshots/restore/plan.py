"""The plan of a restore: the undo point (a PRE_RESTORE snapshot of the targets' values before any
put), the per-PV items created from it in one INSERT ... SELECT, and the pending items a resumed
run takes up. A plan is the targets to write by stage, as PLAN_COLUMNS rows."""

from __future__ import annotations

from concurrent.futures import Future

from django.db import transaction

from pvs.models import PV
from snapshots.capture.models import Snapshot, SnapshotMode, SnapshotOrigin, SnapshotValue
from snapshots.capture.services import take_snapshot
from snapshots.restore.models import (
    Restore,
    RestoreAction,
    RestoreItem,
    RestoreItemStatus,
    RestorePreviewItem,
)
from snapshots.restore.preview import ITEM_COLUMNS
from snapshots.restore.recorder import Recorder
from squirrel_site.bulk_sql import in_array, set_join


def take_undo_snapshot(*, restore: Restore, pvs, user, io) -> Snapshot:
    """The undo point: the current values of `pvs` as a PRE_RESTORE snapshot, with the `registry`
    rows it holds (snapshots.capture.services.take_snapshot).

    Hybrid: from the monitor's cache when it is fresh (connected values are current to within
    its flush lag), read directly for the rest or when the monitor is stale.

    Empty (nothing reachable to write) when `pvs` is: the restore still records its undo point.
    """
    title = f"Before restore #{restore.pk}"
    comment = f"Automatic undo point before restoring snapshot #{restore.snapshot_id} ({restore.snapshot.title})."
    if not pvs.exists():
        empty = Snapshot.objects.create(
            title=title, comment=comment, created_by=user, mode=SnapshotMode.HYBRID, origin=SnapshotOrigin.PRE_RESTORE
        )
        empty.registry = []
        return empty
    return take_snapshot(
        title=title,
        comment=comment,
        created_by=user,
        pvs=pvs,
        mode=SnapshotMode.HYBRID,
        origin=SnapshotOrigin.PRE_RESTORE,
        reader=io,
    )


def new_plan(restore: Restore, io, connect_timeout: float, recorder: Recorder) -> tuple[dict[int, list[tuple]], Future]:
    """Connect the targets and commit the undo snapshot; the items follow on the recorder.
    Returns the plan (the reachable targets by stage, as PLAN_COLUMNS rows) and the future of
    the items' ids by PV name, known once the recorder has created them.

    Connecting every setpoint and readback first costs a dead IOC one timeout for the whole
    restore: its PVs are recorded as disconnected and neither read for the undo snapshot nor
    written.
    """
    targets = list(
        RestorePreviewItem.objects.filter(preview_id=restore.preview_id, action=RestoreAction.WRITE)
        .exclude(pv=None)
        .values_list("pv_id", "stage", *PLAN_COLUMNS)
    )
    addresses = {t[2] for t in targets} | {t[_READBACK] for t in targets if t[_READBACK]}
    connected = io.connect(sorted(addresses), connect_timeout) if addresses else set()
    reachable = [t for t in targets if t[2] in connected]
    with transaction.atomic():
        undo = take_undo_snapshot(
            restore=restore,
            pvs=PV.objects.filter(pk__in=in_array([t[0] for t in reachable], "bigint")),
            user=restore.created_by,
            io=io,
        )
        # The plan is what the items will say is pending: the targets the undo snapshot holds
        # under the preview's name (a PV edited or deleted since the claim drops out of both).
        held = {(pv_id, setpoint) for pv_id, setpoint, _ in undo.registry}
        plan: dict[int, list[tuple]] = {}
        for target in reachable:
            if (target[0], target[2]) in held:
                plan.setdefault(target[1], []).append(target[2:])
        # The first stage's puts follow at once, before its items exist: it counts as being
        # written from this commit on.
        restore.undo_snapshot, restore.writing_stage = undo, min(plan, default=None)
        Restore.objects.filter(pk=restore.pk).update(undo_snapshot=undo, writing_stage=restore.writing_stage)
    ids = bool(restore.options.get("verify"))  # only verification needs them
    item_ids = recorder.submit(_create_items, restore.pk, restore.preview_id, undo.pk, connect_timeout, ids)
    return plan, item_ids


PLAN_COLUMNS = [
    "pv_name",
    "value_type",
    "target_num",
    "target_str",
    "target_array",
    "wait_for_completion",
    "abs_tolerance",
    "rel_tolerance",
    "readback_name",
]
_READBACK = 2 + PLAN_COLUMNS.index("readback_name")  # in new_plan's targets


def unfinished_plan(restore: Restore, connect_timeout: float) -> dict[int, list[tuple]]:
    """The plan of a resumed restore: its pending items by stage. Items an earlier run did not
    get to record (it died between the undo snapshot and their creation) are created first."""
    if not restore.items.exists():
        _create_items(restore.pk, restore.preview_id, restore.undo_snapshot_id, connect_timeout)
    plan: dict[int, list[tuple]] = {}
    pending = restore.items.filter(status=RestoreItemStatus.PENDING).values_list("stage", *PLAN_COLUMNS)
    for row in pending:
        plan.setdefault(row[0], []).append(row[1:])
    return plan


def _create_items(
    restore_id: int, preview_id: int, undo_id: int, connect_timeout: float, ids: bool = False
) -> dict[str, int]:
    """One INSERT ... SELECT: the preview's targets joined with the undo snapshot's values,
    without 40,000 rows travelling to Python and back. A target the undo snapshot lacks was not
    connected: it is recorded as disconnected and never written. With `ids`, returns the new
    items' ids by PV name (verification records read-backs by id without reading the items
    back); else an empty dict."""
    with set_join() as cursor:
        cursor.execute(
            _CREATE_ITEMS + (" RETURNING id, pv_name" if ids else ""),
            {
                "restore": restore_id,
                "preview": preview_id,
                "undo": undo_id,
                "write": RestoreAction.WRITE,
                "pending": RestoreItemStatus.PENDING,
                "disconnected": RestoreItemStatus.DISCONNECTED,
                "message": f"Not connected within {connect_timeout:g} s; not written.",
            },
        )
        return {name: item_id for item_id, name in cursor.fetchall()} if ids else {}


_COPIED = ["pv_id", *ITEM_COLUMNS[1:11]]
_CREATE_ITEMS = f"""
    INSERT INTO {RestoreItem._meta.db_table}
        (restore_id, {", ".join(_COPIED)}, old_num, old_str, old_array, status, message)
    SELECT %(restore)s, {", ".join("i." + column for column in _COPIED)},
        CASE WHEN v.connected THEN v.setpoint_num END,
        CASE WHEN v.connected THEN v.setpoint_str END,
        CASE WHEN v.connected THEN v.setpoint_array END,
        CASE WHEN v.id IS NULL THEN %(disconnected)s ELSE %(pending)s END,
        CASE WHEN v.id IS NULL THEN %(message)s ELSE '' END
    FROM {RestorePreviewItem._meta.db_table} i
    LEFT JOIN {SnapshotValue._meta.db_table} v
        -- Both sides are newer than the planner's statistics (one row each, it guesses): set_join()
        -- keeps it from scanning the undo snapshot once per item (90 s at 30,000 setpoints).
        ON v.snapshot_id = %(undo)s AND v.pv_name = i.pv_name AND v.pv_id = i.pv_id
    WHERE i.preview_id = %(preview)s AND i.action = %(write)s AND i.pv_id IS NOT NULL
    -- A killed runner's INSERT may still commit after its lock is gone: a resume's then adds nothing.
    ON CONFLICT (restore_id, pv_name) DO NOTHING
"""
