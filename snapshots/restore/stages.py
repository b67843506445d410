"""Writing a restore stage by stage: the stage's puts in parallel, a resumed stage's setpoints read
first (what holds its target counts as written), the results recorded on the recorder."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from pvs import epics_io
from snapshots.comparison.rules import within_tolerance
from snapshots.restore.models import (
    Restore,
    RestoreItem,
    RestoreItemStatus,
)
from snapshots.restore.plan import PlanRow
from snapshots.restore.recorder import Recorder
from squirrel_site.bulk_sql import in_array

MAX_OUTSTANDING = 2000


def write_stage(
    restore: Restore, stage: int, rows: list[PlanRow], io, put_timeout: float, recorder: Recorder, resumed: bool
) -> list[PlanRow]:
    """Write the stage's targets in parallel; the recorder records each result.
    Returns the rows whose puts succeeded (not those found applied when resuming)."""
    now = timezone.now()
    outcomes: dict[tuple, list[str]] = {}  # (status, written_at, message) -> PV names
    if resumed and restore.writing_stage is not None and stage <= restore.writing_stage:
        # A runner died around this stage's puts: whatever already holds its target was applied.
        readings = io.read([row.pv_name for row in rows], timeout=put_timeout)
        applied = set()
        for row in rows:
            result = readings.get(row.pv_name)
            if (
                result is not None
                and result.reading is not None
                and within_tolerance(
                    row.target, result.reading.value, row.value_type, row.abs_tolerance, row.rel_tolerance
                )
            ):
                applied.add(row.pv_name)
        outcomes[RestoreItemStatus.WRITTEN, now, "Found applied when resuming an interrupted run."] = list(applied)
        rows = [row for row in rows if row.pv_name not in applied]
    if restore.writing_stage is None or stage > restore.writing_stage:
        # Committed before any put goes out: a crash from here on leaves the stage marked as
        # (possibly) written, one UPDATE of the restore instead of one per item.
        Restore.objects.filter(pk=restore.pk).update(writing_stage=stage)
        restore.writing_stage = stage
    requests = [epics_io.PutRequest(row.pv_name, row.target, wait=row.wait_for_completion) for row in rows]
    results = io.put(requests, timeout=put_timeout, max_outstanding=MAX_OUTSTANDING) if requests else {}
    now = timezone.now()
    written = []
    for row in rows:
        result = results.get(row.pv_name)
        if result is not None and result.ok:
            message = "" if result.completed or not row.wait_for_completion else "Put sent; completion not confirmed."
            outcome = (RestoreItemStatus.WRITTEN, now, message)
            written.append(row)
        else:
            error = result.error if result is not None else "no result from the put"
            outcome = (put_failure(error), None, f"Put: {error}"[:200])
        outcomes.setdefault(outcome, []).append(row.pv_name)
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
