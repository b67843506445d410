"""Writing a restore stage by stage: the stage's puts in parallel, a resumed stage's setpoints read
first (what holds its target counts as written), the results recorded on the recorder."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from pvs import epics_io
from snapshots.capture.models import typed_value
from snapshots.comparison.rules import within_tolerance
from snapshots.restore.models import (
    Restore,
    RestoreItem,
    RestoreItemStatus,
)
from snapshots.restore.recorder import Recorder
from squirrel_site.bulk_sql import in_array

MAX_OUTSTANDING = 2000


def write_stage(
    restore: Restore, stage: int, rows: list[tuple], io, put_timeout: float, recorder: Recorder, resumed: bool
) -> list[tuple]:
    """Write the stage's targets (PLAN_COLUMNS rows) in parallel; the recorder records each result.
    Returns the rows whose puts succeeded (not those found applied when resuming)."""
    now = timezone.now()
    outcomes: dict[tuple, list[str]] = {}  # (status, written_at, message) -> PV names
    if resumed and restore.writing_stage is not None and stage <= restore.writing_stage:
        # A runner died around this stage's puts: whatever already holds its target was applied.
        readings = io.read([row[0] for row in rows], timeout=put_timeout)
        applied = set()
        for row in rows:
            result = readings.get(row[0])
            target = typed_value(row[1], row[2], row[3], row[4])
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
    requests = [epics_io.PutRequest(row[0], typed_value(row[1], row[2], row[3], row[4]), wait=row[5]) for row in rows]
    results = io.put(requests, timeout=put_timeout, max_outstanding=MAX_OUTSTANDING) if requests else {}
    now = timezone.now()
    written = []
    for row in rows:
        result = results.get(row[0])
        if result is not None and result.ok:
            message = "" if result.completed or not row[5] else "Put sent; completion not confirmed."
            outcome = (RestoreItemStatus.WRITTEN, now, message)
            written.append(row)
        else:
            error = result.error if result is not None else "no result from the put"
            outcome = (put_failure(error), None, f"Put: {error}"[:200])
        outcomes.setdefault(outcome, []).append(row[0])
    recorder.submit(_record_stage, restore.pk, stage, outcomes)
    return written


def _record_stage(restore_id: int, stage: int, outcomes: dict[tuple, list[str]]) -> None:
    """Record a stage's put results. Nearly every item shares one outcome: one UPDATE per outcome,
    and the commonest one takes every item of the stage still pending, without naming them."""
    groups = sorted(((names, outcome) for outcome, names in outcomes.items() if names), key=lambda g: len(g[0]))
    pending = RestoreItem.objects.filter(restore_id=restore_id, stage=stage, status=RestoreItemStatus.PENDING)
    with transaction.atomic():
        for n, (names, (status, written_at, message)) in enumerate(groups):
            items = pending if n == len(groups) - 1 else pending.filter(pv_name__in=in_array(names, "text"))
            items.update(status=status, written_at=written_at, message=message)


def put_failure(error: str | None) -> str:
    return {
        epics_io.DISCONNECTED: RestoreItemStatus.DISCONNECTED,
        epics_io.NO_WRITE_ACCESS: RestoreItemStatus.NO_WRITE_ACCESS,
        epics_io.TIMEOUT: RestoreItemStatus.TIMEOUT,
    }.get(error, RestoreItemStatus.FAILED)
