"""Restore: preview a snapshot against the live machine, then execute the confirmed preview.

Execution is idempotent and resumable, because Celery may run a task twice and a worker may die
half-way (docs/restore.md). PostgreSQL is the source of truth: the item of every PV moves
pending -> written -> verified / mismatch / timeout (or disconnected, no_write_access, failed),
and the restore records the last stage whose puts may have gone out (`writing_stage`, committed
before them). Items and put results are written beside the puts (_Recorder), so a run that dies
may leave pending items, or none at all, in stages up to `writing_stage`: a resume creates
missing items from the undo snapshot and reads the setpoint of each pending item in those stages
first; equal to the target within tolerance counts as written, anything else is written. Items
in any later state are never written again. One runner at a time holds a PostgreSQL advisory
lock on the restore; a killed worker's connections close and release it.

All Channel Access goes through pvs.epics_io's EpicsService (`io`); tests pass a fake.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta

from django.db import connection, connections, transaction
from django.db.models import Count, F
from django.utils import timezone

from jobs.models import Job
from monitor import live
from pvs import epics_io
from pvs.models import PV
from snapshots.capture.services import monitor_is_fresh, take_snapshot
from snapshots.comparison.rules import describe_difference, within_tolerance
from snapshots.models import (
    LiveSource,
    Restore,
    RestoreAction,
    RestoreItem,
    RestoreItemStatus,
    RestorePreview,
    RestorePreviewItem,
    RestoreStatus,
    Snapshot,
    SnapshotMode,
    SnapshotOrigin,
    SnapshotValue,
    ValueType,
    _typed,
)
from squirrel_site.bulk_sql import copy_rows, in_array, set_join, update_rows

Progress = Callable[[int, str], None]

DEFAULT_TTL = 300  # seconds a preview stays executable
CONNECT_TIMEOUT = 2.0
PUT_TIMEOUT = 5.0
VERIFY_TIMEOUT = 5.0
VERIFY_INTERVAL = 0.1  # seconds between read-back rounds
FINAL_READ_TIMEOUT = 2.0  # s: the direct read of what the monitor's cache did not confirm
MAX_OUTSTANDING = 2000

# Any number would do: the first half of the two-key advisory lock, so restore ids cannot
# collide with other users of advisory locks.
_LOCK_NAMESPACE = 0x5351  # "SQ"

_ARRAY_TYPES = (ValueType.FLOAT_ARRAY, ValueType.INT_ARRAY)
_NUMBER_TYPES = (ValueType.FLOAT, ValueType.INT, ValueType.ENUM)
_SKIP_COUNTS = {
    RestoreAction.WRITE: "write_count",
    RestoreAction.SKIP_UNCHANGED: "unchanged_count",
    RestoreAction.SKIP_READ_ONLY: "read_only_count",
    RestoreAction.SKIP_DISCONNECTED: "disconnected_count",
    RestoreAction.SKIP_NO_WRITE_ACCESS: "no_write_access_count",
    RestoreAction.SKIP_NO_SAVED_VALUE: "no_saved_value_count",
    RestoreAction.SKIP_NOT_IN_REGISTRY: "not_in_registry_count",
}


class RestoreError(Exception):
    """A restore that cannot be previewed or executed; the message is meant for the operator."""


class RestoreBusy(RestoreError):
    """Another runner is executing this restore right now."""


class RestoreExpired(RestoreError):
    """The restore's job is past its start deadline and nothing was written: it is not started."""


class NeedsChannelAccess(RestoreError):
    """A cache-only preview found the monitor's cache stale or incomplete: make it in a worker."""


# Preview ---------------------------------------------------------------------------------------


def preview_restore(
    snapshot: Snapshot,
    *,
    created_by,
    pvs=None,
    include_unchanged: bool = False,
    ttl: float = DEFAULT_TTL,
    io=None,
    cache_only: bool = False,
    job_id: int | None = None,
) -> RestorePreview:
    """Compare `snapshot` with the live values of its PVs (or of `pvs`, a PV queryset) and record
    what a restore would do with each. Live values come from the monitor's cache when its
    heartbeat is fresh (a direct read for addresses it lacks), else from a direct read.

    `cache_only` (web processes, which never talk Channel Access): raise NeedsChannelAccess
    instead of reading directly; nothing is written then. `job_id`: the preview job, whose result
    is saved with the preview.

    PVs already within tolerance are skipped unless `include_unchanged`: operators normally restore
    only what differs, but may ask for everything to be written again.
    """
    rows = SnapshotValue.objects.filter(snapshot=snapshot)
    if pvs is not None:
        rows = rows.filter(pv__in=pvs.values("pk"))
    with set_join():  # the snapshot's values with the registry: two whole sets
        rows = list(
            rows.order_by("pv_name").values_list(
                "pv_id",
                "pv_name",
                "value_type",
                "setpoint_num",
                "setpoint_str",
                "setpoint_array",
                "connected",
                "pv__setpoint_address",
                "pv__readback_address",
                "pv__restore_stage",
                "pv__wait_for_completion",
                "pv__abs_tolerance",
                "pv__rel_tolerance",
                "pv__read_only",
            )
        )
    addresses = [row[7] for row in rows if row[0] is not None]
    values, writable, source = _live_values(addresses, io, cache_only)

    items, counts = [], Counter()
    for (
        pv_id,
        saved_name,
        value_type,
        num,
        text,
        arr,
        saved_connected,
        address,
        readback,
        stage,
        wait,
        abs_tol,
        rel_tol,
        read_only,
    ) in rows:
        target = _typed(value_type, num, text, arr)
        live_value = values.get(address) if pv_id is not None else None
        within = None
        if saved_connected and live_value is not None:
            within = within_tolerance(target, live_value, value_type, abs_tol, rel_tol)
        if pv_id is None:
            action = RestoreAction.SKIP_NOT_IN_REGISTRY
        elif read_only:
            action = RestoreAction.SKIP_READ_ONLY
        elif not saved_connected:
            action = RestoreAction.SKIP_NO_SAVED_VALUE
        elif live_value is None:
            action = RestoreAction.SKIP_DISCONNECTED
        elif not writable.get(address, True):
            action = RestoreAction.SKIP_NO_WRITE_ACCESS
        elif within and not include_unchanged:
            action = RestoreAction.SKIP_UNCHANGED
        else:
            action = RestoreAction.WRITE
        counts[action] += 1
        items.append(
            (
                pv_id,
                address or saved_name,
                readback or "",
                stage or 0,
                bool(wait),
                abs_tol or 0.0,
                rel_tol or 0.0,
                value_type,
                num,
                text,
                arr,
                *_columns(value_type, live_value),
                within,
                action,
            )
        )

    now = timezone.now()
    with transaction.atomic():
        preview = RestorePreview.objects.create(
            snapshot=snapshot,
            created_by=created_by,
            expires_at=now + timedelta(seconds=ttl),
            include_unchanged=include_unchanged,
            selection_size=len(rows),
            registry_fingerprint=_fingerprint([row[0] for row in rows if row[0] is not None]),
            live_source=source,
            **{_SKIP_COUNTS[action]: n for action, n in counts.items()},
        )
        copy_rows(RestorePreviewItem, ["preview", *_ITEM_COLUMNS], ((preview.pk, *item) for item in items))
        if job_id is not None:
            Job.objects.filter(pk=job_id).update(result_id=preview.pk)
    return preview


_ITEM_COLUMNS = [
    "pv",
    "pv_name",
    "readback_name",
    "stage",
    "wait_for_completion",
    "abs_tolerance",
    "rel_tolerance",
    "value_type",
    "target_num",
    "target_str",
    "target_array",
    "live_num",
    "live_str",
    "live_array",
    "within_tolerance",
    "action",
]


def _live_values(addresses: list[str], io, cache_only: bool = False) -> tuple[dict, dict, str]:
    """(value by connected address, write access by address, source) for the preview."""
    values, writable, missing = {}, {}, addresses
    source = LiveSource.DIRECT
    if addresses and monitor_is_fresh():
        source = LiveSource.CACHE
        cached, metas, _ = live.read_values_and_metadata(addresses)
        missing = []
        for address in addresses:
            value = cached[address]
            if value is None:
                missing.append(address)  # not (yet) in the cache: read it
            elif value.connected:
                values[address] = value.value
            meta = metas[address]
            if meta is not None:
                writable[address] = meta.write_access
    if missing and cache_only:
        raise NeedsChannelAccess(
            f"{len(missing)} of {len(addresses)} PVs are not in a fresh monitor cache: reading them takes a worker."
            if source == LiveSource.CACHE
            else "The monitor's cache is not fresh: reading the PVs takes a worker."
        )
    if missing:
        io = io or _service()
        for address, result in io.read(missing).items():
            if result.reading is not None:
                values[address] = result.reading.value
        for address, meta in io.metadata(missing).items():
            if meta is not None:
                writable[address] = meta.write_access
    return values, writable, source


def _fingerprint(pv_ids: list[int]) -> str:
    """md5 over the registry rows of `pv_ids` (everything a restore depends on), in id order."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT md5(count(*)::text || ':' || coalesce(string_agg(concat_ws('|', id, setpoint_address,"
            " readback_address, abs_tolerance::text, rel_tolerance::text, read_only, restore_stage,"
            " wait_for_completion), ',' ORDER BY id), '')) FROM pvs_pv WHERE id = ANY(%s)",
            [pv_ids],
        )
        return cursor.fetchone()[0]


def _columns(value_type: str, value) -> tuple:
    """A Python value as the (num, str, array) columns of `value_type`; all None if it does not fit."""
    if value is None:
        return None, None, None
    try:
        if value_type in _ARRAY_TYPES:
            return None, None, [float(x) for x in (value if isinstance(value, (list, tuple)) else [value])]
        if value_type in _NUMBER_TYPES:
            return float(value[0] if isinstance(value, (list, tuple)) and len(value) == 1 else value), None, None
        if value_type == ValueType.STRING:
            return None, str(value), None
    except (TypeError, ValueError):
        pass
    return None, None, None


# Execute ---------------------------------------------------------------------------------------


def execute_restore(
    preview: RestorePreview,
    *,
    user,
    job=None,
    io=None,
    verify: bool = True,
    verify_timeout: float = VERIFY_TIMEOUT,
    put_timeout: float = PUT_TIMEOUT,
    connect_timeout: float = CONNECT_TIMEOUT,
    progress: Progress | None = None,
) -> Restore:
    """Execute a confirmed preview: undo snapshot, staged writes, verification, per-PV record.

    Refused with RestoreError if the preview expired, was executed already, or its PVs changed
    in the registry since. Called again for a preview whose restore did not finish (a redelivered
    task, a retry after a crash), it resumes that restore; the options of the first call stay.
    """
    restore, created = _claim(
        preview,
        user,
        job,
        {
            "verify": verify,
            "verify_timeout": verify_timeout,
            "put_timeout": put_timeout,
            "connect_timeout": connect_timeout,
        },
    )
    # A restore created just now was checked against the registry by the claim (~0.2 s at 50,000
    # PVs); one found unfinished is checked again before it writes anything.
    return _run(restore, io=io, progress=progress, job=job, registry_checked=created)


def resume_restore(restore: Restore, *, io=None, progress: Progress | None = None, job=None) -> Restore:
    """Run `restore` from wherever its items stand; a finished restore is returned unchanged.

    Raises RestoreBusy if another runner holds it.
    """
    return _run(restore, io=io, progress=progress, job=job, registry_checked=False)


def _run(restore: Restore, *, io, progress: Progress | None, job, registry_checked: bool) -> Restore:
    io = io or _service()
    report = progress or (lambda percent, message: None)
    with _runner_lock(restore), _Recorder() as recorder:
        restore.refresh_from_db()
        if restore.is_finished:
            return restore
        # The job that holds the runner lock is the restore's job from now on.
        Restore.objects.filter(pk=restore.pk).update(
            status=RestoreStatus.RUNNING,
            started_at=restore.started_at or timezone.now(),
            runs=F("runs") + 1,
            job=job if job is not None else restore.job,
        )
        options = restore.options
        resumed = restore.undo_snapshot_id is not None
        if resumed:
            plan = _unfinished(restore, options["connect_timeout"])
        else:
            # Nothing is written yet: a job past its start deadline (a delivery after a crash, long
            # after the request) does not start now, and a registry edit since the claim still
            # refuses, or the undo snapshot and the writes would follow different addresses.
            if job is not None and job.is_overdue():
                _end_unwritten(restore)
                raise RestoreExpired(f"Restore #{restore.pk} was not started before its deadline.")
            changed = None if registry_checked else _registry_changed(restore.preview)
            if changed:
                _end_unwritten(restore)
                raise RestoreError(f"{changed} Nothing was written.")
            report(0, "Taking the undo snapshot")
            plan = _capture(restore, io, options["connect_timeout"], recorder)
        for n, stage in enumerate(sorted(plan)):
            recorder.check()  # a failed write of the bookkeeping stops the restore before more puts
            report(10 + 70 * n // max(1, len(plan)), f"Writing stage {stage}")
            _write_stage(restore, stage, plan[stage], io, options["put_timeout"], recorder, resumed)
        recorder.check(wait=True)
        # Only after the last stage: a later stage (an enable, a mode) may move earlier read-backs.
        if options["verify"]:
            report(80, "Verifying read-backs")
            _Verifier(restore, io).run(options["verify_timeout"])
        _finish(restore, options["verify"], job)
        restore.refresh_from_db()
        report(100, f"Restore {restore.get_status_display().lower()}")
    return restore


def _end_unwritten(restore: Restore) -> None:
    """Finish a restore that wrote nothing (an empty summary says so)."""
    Restore.objects.filter(pk=restore.pk).update(status=RestoreStatus.PARTIAL, finished_at=timezone.now(), summary={})


def undo_restore(
    restore: Restore, *, user, ttl: float = DEFAULT_TTL, io=None, cache_only: bool = False, job_id: int | None = None
) -> RestorePreview:
    """A preview that puts the PVs of `restore` back to its undo snapshot; execute it as usual."""
    if restore.undo_snapshot_id is None:
        raise RestoreError(f"Restore #{restore.pk} has no undo snapshot: it never started writing.")
    return preview_restore(
        restore.undo_snapshot,
        created_by=user,
        pvs=undo_pvs(restore),
        ttl=ttl,
        io=io,
        cache_only=cache_only,
        job_id=job_id,
    )


def undo_pvs(restore: Restore):
    """The PVs an undo of `restore` puts back: those it targeted."""
    return PV.objects.filter(pk__in=restore.items.exclude(pv=None).values("pv"))


def take_undo_snapshot(*, restore: Restore, pvs, user, io) -> Snapshot:
    """The undo point: the current values of `pvs` as a PRE_RESTORE snapshot.

    Hybrid: from the monitor's cache when it is fresh (connected values are current to within
    its flush lag), read directly for the rest or when the monitor is stale.

    Empty (nothing reachable to write) when `pvs` is: the restore still records its undo point.
    """
    title = f"Before restore #{restore.pk}"
    comment = f"Automatic undo point before restoring snapshot #{restore.snapshot_id} ({restore.snapshot.title})."
    if not pvs.exists():
        return Snapshot.objects.create(
            title=title, comment=comment, created_by=user, mode=SnapshotMode.HYBRID, origin=SnapshotOrigin.PRE_RESTORE
        )
    return take_snapshot(
        title=title,
        comment=comment,
        created_by=user,
        pvs=pvs,
        mode=SnapshotMode.HYBRID,
        origin=SnapshotOrigin.PRE_RESTORE,
        reader=io,
    )


def execution_refusal(preview: RestorePreview, existing: Restore | None = None) -> str | None:
    """Why `preview` may not be executed now, or None. An unfinished restore of it may always
    resume (its worker died or its job failed); a finished one may not run again."""
    existing = existing or Restore.objects.filter(preview=preview).first()
    if existing is not None:
        if existing.is_finished:
            return (
                f"Preview #{preview.pk} was already executed (restore #{existing.pk}, "
                f"{existing.get_status_display().lower()}). Make a new preview to restore again."
            )
        return None
    if preview.expires_at <= timezone.now():
        return (
            f"Preview #{preview.pk} expired at {timezone.localtime(preview.expires_at):%H:%M:%S}: "
            "the machine may have changed since. Make a new preview."
        )
    return _registry_changed(preview)


def _registry_changed(preview: RestorePreview) -> str | None:
    """Why the registry entries of the preview's PVs no longer match it, or None."""
    pv_ids = list(preview.items.exclude(pv=None).values_list("pv_id", flat=True))
    deleted = preview.items.filter(pv=None).exclude(action=RestoreAction.SKIP_NOT_IN_REGISTRY).exists()
    if deleted or _fingerprint(pv_ids) != preview.registry_fingerprint:
        return (
            f"The registry entries of PVs in preview #{preview.pk} were edited or deleted since it "
            "was made (addresses, tolerances, read-only, stage). Make a new preview."
        )
    return None


def _claim(preview: RestorePreview, user, job, options: dict) -> tuple[Restore, bool]:
    """(The restore of `preview`, created): created if the preview may still be executed, else
    the unfinished one."""
    with transaction.atomic():
        preview = RestorePreview.objects.select_for_update().get(pk=preview.pk)
        existing = Restore.objects.filter(preview=preview).first()
        refusal = execution_refusal(preview, existing)
        if refusal:
            raise RestoreError(refusal)
        if existing is not None:
            return existing, False
        restore = Restore.objects.create(
            preview=preview, snapshot_id=preview.snapshot_id, created_by=user, job=job, options=options
        )
        return restore, True


@contextmanager
def _runner_lock(restore: Restore):
    """Hold the session-level advisory lock of `restore`, or raise RestoreBusy."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s::int, %s::int)", [_LOCK_NAMESPACE, restore.pk])
        if not cursor.fetchone()[0]:
            raise RestoreBusy(f"Restore #{restore.pk} is being executed by another worker.")
    try:
        yield
    finally:
        # Inside a broken outer transaction (only when a caller wrapped us in atomic) nothing can
        # run; the lock is session-level and reentrant, and goes when the connection closes.
        if not connection.needs_rollback:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s::int, %s::int)", [_LOCK_NAMESPACE, restore.pk])


class _Recorder:
    """The restore's bookkeeping writes (items, put results), in order, on a second database
    connection while the puts go out: creating 42,500 items costs ~0.6 s and each stage's results
    ~0.1 s, which then overlap the Channel Access work instead of adding to it.

    Inline when the caller holds a transaction (tests): a second connection could not see its
    uncommitted rows. A write that fails is raised by the next check(); until then the restore
    stands as after a crash, which a resume repairs (see _unfinished).
    """

    def __init__(self):
        self._pool = None
        if not connection.in_atomic_block:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="restore-recorder")
        self._futures: list[Future] = []

    def submit(self, write: Callable, *args) -> None:
        if self._pool is None:
            write(*args)
        else:
            self._futures.append(self._pool.submit(self._write, write, *args))

    @staticmethod
    def _write(write: Callable, *args) -> None:
        # The thread's own connection: after a failed write, the next one reconnects.
        connection.close_if_unusable_or_obsolete()
        write(*args)

    def check(self, wait: bool = False) -> None:
        """Raise the first failed write so far; with `wait`, once every write has finished."""
        for future in self._futures:
            if wait or future.done():
                future.result()

    def __enter__(self) -> _Recorder:
        return self

    def __exit__(self, *exc_info) -> None:
        # Writes already queued record puts that happened: they finish even when the runner failed.
        if self._pool is not None:
            self._pool.submit(connections.close_all)
            self._pool.shutdown(wait=True)


def _capture(restore: Restore, io, connect_timeout: float, recorder: _Recorder) -> dict[int, list[tuple]]:
    """Connect the targets and commit the undo snapshot; the items follow on the recorder.
    Returns the plan: the reachable targets by stage, as _PLAN_COLUMNS rows.

    Connecting every setpoint and readback first costs a dead IOC one timeout for the whole
    restore: its PVs are recorded as disconnected and neither read for the undo snapshot nor
    written.
    """
    targets = list(
        RestorePreviewItem.objects.filter(preview_id=restore.preview_id, action=RestoreAction.WRITE)
        .exclude(pv=None)
        .values_list("pv_id", "stage", "readback_name", *_PLAN_COLUMNS)
    )
    addresses = {t[3] for t in targets} | {t[2] for t in targets if t[2]}
    connected = io.connect(sorted(addresses), connect_timeout) if addresses else set()
    reachable = [t for t in targets if t[3] in connected]
    with transaction.atomic():
        undo = take_undo_snapshot(
            restore=restore,
            pvs=PV.objects.filter(pk__in=in_array([t[0] for t in reachable], "bigint")),
            user=restore.created_by,
            io=io,
        )
        # The plan is what the items will say is pending: the targets the undo snapshot holds
        # under the preview's name (a PV edited or deleted since the claim drops out of both).
        held = set(SnapshotValue.objects.filter(snapshot=undo).values_list("pv_id", "pv_name"))
        plan: dict[int, list[tuple]] = {}
        for target in reachable:
            if (target[0], target[3]) in held:
                plan.setdefault(target[1], []).append(target[3:])
        # The first stage's puts follow at once, before its items exist: it counts as being
        # written from this commit on.
        restore.undo_snapshot, restore.writing_stage = undo, min(plan, default=None)
        Restore.objects.filter(pk=restore.pk).update(undo_snapshot=undo, writing_stage=restore.writing_stage)
    recorder.submit(_create_items, restore.pk, restore.preview_id, undo.pk, connect_timeout)
    return plan


_PLAN_COLUMNS = [
    "pv_name",
    "value_type",
    "target_num",
    "target_str",
    "target_array",
    "wait_for_completion",
    "abs_tolerance",
    "rel_tolerance",
]


def _unfinished(restore: Restore, connect_timeout: float) -> dict[int, list[tuple]]:
    """The plan of a resumed restore: its pending items by stage. Items an earlier run did not
    get to record (it died between the undo snapshot and their creation) are created first."""
    if not restore.items.exists():
        _create_items(restore.pk, restore.preview_id, restore.undo_snapshot_id, connect_timeout)
    plan: dict[int, list[tuple]] = {}
    pending = restore.items.filter(status=RestoreItemStatus.PENDING).values_list("stage", *_PLAN_COLUMNS)
    for row in pending:
        plan.setdefault(row[0], []).append(row[1:])
    return plan


def _create_items(restore_id: int, preview_id: int, undo_id: int, connect_timeout: float) -> None:
    """One INSERT ... SELECT: the preview's targets joined with the undo snapshot's values,
    without 40,000 rows travelling to Python and back. A target the undo snapshot lacks was not
    connected: it is recorded as disconnected and never written."""
    with set_join() as cursor:
        cursor.execute(
            _CREATE_ITEMS,
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


_COPIED = ["pv_id", *_ITEM_COLUMNS[1:11]]
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


def _write_stage(
    restore: Restore, stage: int, rows: list[tuple], io, put_timeout: float, recorder: _Recorder, resumed: bool
) -> None:
    """Write the stage's targets (_PLAN_COLUMNS rows) in parallel; the recorder records each result."""
    now = timezone.now()
    outcomes: dict[tuple, list[str]] = {}  # (status, written_at, message) -> PV names
    if resumed and restore.writing_stage is not None and stage <= restore.writing_stage:
        # A runner died around this stage's puts: whatever already holds its target was applied.
        readings = io.read([row[0] for row in rows], timeout=put_timeout)
        applied = set()
        for row in rows:
            result = readings.get(row[0])
            target = _typed(row[1], row[2], row[3], row[4])
            if (
                result is not None
                and result.reading is not None
                and within_tolerance(target, result.reading.value, row[1], row[6], row[7])
            ):
                applied.add(row[0])
        outcomes[RestoreItemStatus.WRITTEN, now, "Found applied when resuming an interrupted run."] = list(applied)
        rows = [row for row in rows if row[0] not in applied]
    if restore.writing_stage is None or stage > restore.writing_stage:
        # Committed before any put goes out: a crash from here on leaves the stage marked as
        # (possibly) written, one UPDATE of the restore instead of one per item.
        Restore.objects.filter(pk=restore.pk).update(writing_stage=stage)
        restore.writing_stage = stage
    requests = [epics_io.PutRequest(row[0], _typed(row[1], row[2], row[3], row[4]), wait=row[5]) for row in rows]
    results = io.put(requests, timeout=put_timeout, max_outstanding=MAX_OUTSTANDING) if requests else {}
    now = timezone.now()
    for row in rows:
        result = results.get(row[0])
        if result is not None and result.ok:
            message = "" if result.completed or not row[5] else "Put sent; completion not confirmed."
            outcome = (RestoreItemStatus.WRITTEN, now, message)
        else:
            error = result.error if result is not None else "no result from the put"
            outcome = (_put_failure(error), None, f"Put: {error}"[:200])
        outcomes.setdefault(outcome, []).append(row[0])
    recorder.submit(_record_stage, restore.pk, stage, outcomes)


def _record_stage(restore_id: int, stage: int, outcomes: dict[tuple, list[str]]) -> None:
    """Record a stage's put results. Nearly every item shares one outcome: one UPDATE per outcome,
    and the commonest one takes every item of the stage still pending, without naming them."""
    groups = sorted(((names, outcome) for outcome, names in outcomes.items() if names), key=lambda g: len(g[0]))
    pending = RestoreItem.objects.filter(restore_id=restore_id, stage=stage, status=RestoreItemStatus.PENDING)
    with transaction.atomic():
        for n, (names, (status, written_at, message)) in enumerate(groups):
            items = pending if n == len(groups) - 1 else pending.filter(pv_name__in=in_array(names, "text"))
            items.update(status=status, written_at=written_at, message=message)


def _put_failure(error: str | None) -> str:
    return {
        epics_io.DISCONNECTED: RestoreItemStatus.DISCONNECTED,
        epics_io.NO_WRITE_ACCESS: RestoreItemStatus.NO_WRITE_ACCESS,
        epics_io.TIMEOUT: RestoreItemStatus.TIMEOUT,
    }.get(error, RestoreItemStatus.FAILED)


class _Verifier:
    """Reads back written items until each is within tolerance, or one shared deadline passes.

    Rounds read the monitor's cache while it is fresh (one HMGET: ~0.1 s for 40,000 read-backs,
    against ~1 s for a Channel Access round) and a connected cached value within tolerance counts
    as verified; what the cache has not confirmed by the deadline gets one authoritative direct
    read. A read-back that reports disconnected or no read access on a direct read is final at
    once, so one dead IOC cannot hold up the others' rounds. Freshness is checked again every
    second.
    """

    FRESHNESS_INTERVAL = 1.0

    def __init__(self, restore: Restore, io):
        """Take on the restore's written items (not verified yet)."""
        self.io = io
        rows = restore.items.filter(status=RestoreItemStatus.WRITTEN).values_list(
            "id",
            "pv_name",
            "readback_name",
            "value_type",
            "target_num",
            "target_str",
            "target_array",
            "abs_tolerance",
            "rel_tolerance",
        )
        self.pending: dict[int, tuple] = {row[0]: row for row in rows}
        self.last_seen: dict[int, object] = {}
        self._fresh, self._fresh_checked = False, -math.inf

    def cache_is_fresh(self) -> bool:
        now = time.monotonic()
        if now - self._fresh_checked >= self.FRESHNESS_INTERVAL:
            self._fresh, self._fresh_checked = monitor_is_fresh(), now
        return self._fresh

    def run(self, verify_timeout: float) -> None:
        """Rounds until every item is settled or the deadline passes; then record the rest."""
        deadline = time.monotonic() + verify_timeout
        used_cache = False
        while self.pending:
            if self.cache_is_fresh():
                used_cache = True
                self.settle(_cached_readings(self._addresses()))
            else:
                self.settle(self.io.read(self._addresses(), timeout=max(deadline - time.monotonic(), 0.01)))
            if not self.pending or time.monotonic() >= deadline:
                break
            time.sleep(min(VERIFY_INTERVAL, max(0.0, deadline - time.monotonic())))
        if used_cache and self.pending:
            self.settle(self.io.read(self._addresses(), timeout=FINAL_READ_TIMEOUT))
        updates = []
        for item_id, row in self.pending.items():
            target = _typed(row[3], row[4], row[5], row[6])
            if item_id in self.last_seen:
                seen = self.last_seen[item_id]
                message = f"Read-back {describe_difference(target, seen, row[3])} after {verify_timeout:g} s"
                updates.append(_verified(item_id, RestoreItemStatus.MISMATCH, seen, row, message))
            else:
                message = f"No read-back within {verify_timeout:g} s"
                updates.append(_verified(item_id, RestoreItemStatus.TIMEOUT, None, row, message))
        update_rows(RestoreItem, _VERIFY_FIELDS, updates)
        self.pending.clear()

    def settle(self, readings: dict) -> None:
        """Record the items `readings` decide; leave the others pending."""
        verified: dict[int, list[tuple]] = {0: [], 1: [], 2: []}  # by the read-back column used
        failed = []
        for item_id, row in list(self.pending.items()):
            result = readings.get(row[2] or row[1])
            if result is None or result.reading is None:
                error = result.error if result is not None else "no result"
                if error in (epics_io.DISCONNECTED, epics_io.NO_READ_ACCESS):
                    status = _put_failure(error)  # disconnected, or failed for no read access
                    failed.append(_verified(item_id, status, None, row, f"Read-back: {error}"))
                    del self.pending[item_id]
                continue
            value = result.reading.value
            self.last_seen[item_id] = value
            if within_tolerance(_typed(row[3], row[4], row[5], row[6]), value, row[3], row[7], row[8]):
                columns = _columns(row[3], value)
                used = next((i for i, column in enumerate(columns) if column is not None), 0)
                verified[used].append((item_id, columns[used]))
                del self.pending[item_id]
        now = timezone.now()
        for used, rows in verified.items():
            # A verified item keeps its message (e.g. that completion was not confirmed).
            update_rows(
                RestoreItem,
                [_READBACK_COLUMNS[used]],
                rows,
                constants={"status": RestoreItemStatus.VERIFIED, "verified_at": now},
            )
        update_rows(RestoreItem, _VERIFY_FIELDS, failed)

    def _addresses(self) -> list[str]:
        return [row[2] or row[1] for row in self.pending.values()]


def _cached_readings(addresses: list[str]) -> dict[str, epics_io.ReadResult]:
    """The monitor's connected values of `addresses`, shaped like direct-read results."""
    results = {}
    for address, value in live.read_values(addresses).items():
        if value is not None and value.connected:
            reading = epics_io.Reading(
                address, value.kind, value.value, value.status, value.severity, value.timestamp, value.received
            )
            results[address] = epics_io.ReadResult(address, reading)
    return results


_READBACK_COLUMNS = ["readback_num", "readback_str", "readback_array"]
_VERIFY_FIELDS = ["status", *_READBACK_COLUMNS, "message", "verified_at"]


def _verified(item_id: int, status: str, value, row: tuple, message: str) -> tuple:
    """An update_rows() row of _VERIFY_FIELDS for an item that did not verify."""
    return (item_id, status, *_columns(row[3], value), message[:200], None)


def _finish(restore: Restore, verified: bool, job=None) -> None:
    """Record the outcome; the job's result goes in the same transaction, so a delivery of the job
    after a crash before job.finish() finishes it instead of failing on a finished restore."""
    summary = dict(restore.items.values_list("status").annotate(n=Count("id")).order_by())
    good = RestoreItemStatus.VERIFIED if verified else RestoreItemStatus.WRITTEN
    # PVs the preview skipped were confirmed as skipped: only the targeted PVs decide success.
    ok = all(status == good for status in summary)
    restore.status = RestoreStatus.SUCCEEDED if ok else RestoreStatus.PARTIAL
    restore.finished_at = timezone.now()
    restore.summary = summary
    with transaction.atomic():
        Restore.objects.filter(pk=restore.pk).update(
            status=restore.status, finished_at=restore.finished_at, summary=summary, writing_stage=None
        )
        if job is not None:
            Job.objects.filter(pk=job.pk).update(result_id=restore.pk)


def _service():
    """This process's EpicsService (pvs.epics_io owns Channel Access)."""
    return epics_io.epics_service()
