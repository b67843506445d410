"""The plan of a restore: the undo point (a PRE_RESTORE snapshot of the targets' values before any
put), the per-PV items created from it in one INSERT ... SELECT, and the pending items a resumed
run takes up. A plan is the targets to write by stage, as PlanRow rows."""

from __future__ import annotations

from concurrent.futures import Future
from typing import NamedTuple

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
from squirrel_site.epics_values import from_columns


class PlanRow(NamedTuple):
    """One target of a restore, as its preview item (and its restore item) hold it: what the
    stages put, the verifier reads back and compares."""

    pv_name: str  # the setpoint address written
    value_type: str
    target_num: float | None
    target_str: str | None
    target_array: list | None
    wait_for_completion: bool
    abs_tolerance: float
    rel_tolerance: float
    readback_name: str  # "" when the setpoint is read back

    @property
    def target(self):
        """The value to put (squirrel_site.epics_values.from_columns of the target columns)."""
        return from_columns(self.value_type, self.target_num, self.target_str, self.target_array)

    @property
    def read_back_from(self) -> str:
        """The address the verifier reads: the readback, else the setpoint."""
        return self.readback_name or self.pv_name


PLAN_COLUMNS = list(PlanRow._fields)  # their columns in RestorePreviewItem and RestoreItem


class _Target(NamedTuple):
    """A preview's target: its PV, its stage and its plan row."""

    pv_id: int
    stage: int
    row: PlanRow


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


def new_plan(
    restore: Restore, io, connect_timeout: float, recorder: Recorder
) -> tuple[dict[int, list[PlanRow]], Future]:
    """Connect the targets and commit the undo snapshot; the items follow on the recorder.
    Returns the plan (the reachable targets by stage) and the future of
    the items' ids by PV name, known once the recorder has created them.

    Connecting every setpoint and readback first costs a dead IOC one timeout for the whole
    restore: its PVs are recorded as disconnected and neither read for the undo snapshot nor
    written.
    """
    targets = [
        _Target(pv_id, stage, PlanRow(*columns))
        for pv_id, stage, *columns in RestorePreviewItem.objects.filter(
            preview_id=restore.preview_id, action=RestoreAction.WRITE
        )
        .exclude(pv=None)
        .values_list("pv_id", "stage", *PLAN_COLUMNS)
    ]
    addresses = {t.row.pv_name for t in targets} | {t.row.readback_name for t in targets if t.row.readback_name}
    connected = io.connect(sorted(addresses), connect_timeout) if addresses else set()
    reachable = [t for t in targets if t.row.pv_name in connected]
    with transaction.atomic():
        undo = take_undo_snapshot(
            restore=restore,
            pvs=PV.objects.filter(pk__in=in_array([t.pv_id for t in reachable], "bigint")),
            user=restore.created_by,
            io=io,
        )
        # The plan is what the items will say is pending: the targets the undo snapshot holds
        # under the preview's name (a PV edited or deleted since the claim drops out of both).
        held = {(pv_id, setpoint) for pv_id, setpoint, _ in undo.registry}
        plan: dict[int, list[PlanRow]] = {}
        for pv_id, stage, row in reachable:
            if (pv_id, row.pv_name) in held:
                plan.setdefault(stage, []).append(row)
        # The first stage's puts follow at once, before its items exist: it counts as being
        # written from this commit on.
        restore.undo_snapshot, restore.writing_stage = undo, min(plan, default=None)
        Restore.objects.filter(pk=restore.pk).update(undo_snapshot=undo, writing_stage=restore.writing_stage)
    ids = bool(restore.options.get("verify"))  # only verification needs them
    item_ids = recorder.submit(_create_items, restore.pk, restore.preview_id, undo.pk, connect_timeout, ids)
    return plan, item_ids


def unfinished_plan(restore: Restore, connect_timeout: float) -> dict[int, list[PlanRow]]:
    """The plan of a resumed restore: its pending items by stage. Items an earlier run did not
    get to record (it died between the undo snapshot and their creation) are created first."""
    if not restore.items.exists():
        _create_items(restore.pk, restore.preview_id, restore.undo_snapshot_id, connect_timeout)
    plan: dict[int, list[PlanRow]] = {}
    pending = restore.items.filter(status=RestoreItemStatus.PENDING).values_list("stage", *PLAN_COLUMNS)
    for stage, *columns in pending:
        plan.setdefault(stage, []).append(PlanRow(*columns))
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


# What an item copies from its preview item: the target, where and how it is written.
_COPIED = ["pv_id", *ITEM_COLUMNS[ITEM_COLUMNS.index("pv_name") : ITEM_COLUMNS.index("target_array") + 1]]
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
