"""Verification: reading back the written items until each is within tolerance or a deadline passes."""

from __future__ import annotations

import math
import time
from concurrent.futures import Future

from django.utils import timezone

from monitor import live
from pvs import epics_io
from snapshots.capture.services import monitor_is_fresh
from snapshots.comparison.rules import describe_difference, within_tolerance
from snapshots.restore.models import (
    Restore,
    RestoreItem,
    RestoreItemStatus,
)
from snapshots.restore.plan import PLAN_COLUMNS, PlanRow
from snapshots.restore.recorder import Recorder
from snapshots.restore.stages import put_failure
from squirrel_site.bulk_sql import update_rows
from squirrel_site.epics_values import fit_columns

VERIFY_INTERVAL = 0.1  # seconds between read-back rounds
FINAL_READ_TIMEOUT = 2.0  # s: the direct read of what the monitor's cache did not confirm


class Verifier:
    """Reads back written items until each is within tolerance, or one shared deadline passes.

    Rounds read the monitor's cache while it is fresh (one HMGET: ~0.1 s for 40,000 read-backs,
    against ~1 s for a Channel Access round) and a connected cached value within tolerance counts
    as verified; what the cache has not confirmed by the deadline gets one authoritative direct
    read. A read-back that reports disconnected or no read access on a direct read is final at
    once, so one dead IOC cannot hold up the others' rounds. Freshness is checked again every
    second.

    What a round decides is recorded on the restore's recorder, after the items and the put
    results: the database writes of one chunk of a round overlap the reading and checking of the
    next. The caller waits for the recorder before it finishes the restore.
    """

    FRESHNESS_INTERVAL = 1.0
    ROUND_CHUNK = 10_000  # read-backs read, checked and recorded at a time in a cache round

    def __init__(self, restore: Restore, io, recorder: Recorder, written: list[PlanRow] | None = None, item_ids=None):
        """Take on the items to verify: `written`, the plan rows (snapshots.restore.plan) whose
        puts this run made, with `item_ids`, the recorder's future of the items' ids by PV name;
        or, without them (a resumed run, once the recorder has finished), every item the
        database holds as written."""
        self.io, self.recorder = io, recorder
        if written is None:
            ids: dict[str, int] = {}
            written = []
            items = restore.items.filter(status=RestoreItemStatus.WRITTEN).values_list("id", *PLAN_COLUMNS)
            for item_id, *columns in items:
                row = PlanRow(*columns)
                ids[row.pv_name] = item_id
                written.append(row)
            item_ids = Future()
            item_ids.set_result(ids)
        self.item_ids = item_ids
        self.pending: dict[str, PlanRow] = {row.pv_name: row for row in written}
        self.last_seen: dict[str, object] = {}
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
            names = list(self.pending)
            if self.cache_is_fresh():
                used_cache = True
                for start in range(0, len(names), self.ROUND_CHUNK):
                    chunk = names[start : start + self.ROUND_CHUNK]
                    self.settle(chunk, _cached_readings([self._address(name) for name in chunk]))
            else:
                timeout = max(deadline - time.monotonic(), 0.01)
                self.settle(names, self.io.read([self._address(name) for name in names], timeout=timeout))
            if not self.pending or time.monotonic() >= deadline:
                break
            time.sleep(min(VERIFY_INTERVAL, max(0.0, deadline - time.monotonic())))
        if used_cache and self.pending:
            names = list(self.pending)
            self.settle(names, self.io.read([self._address(name) for name in names], timeout=FINAL_READ_TIMEOUT))
        updates = []
        for name, row in self.pending.items():
            if name in self.last_seen:
                seen = self.last_seen[name]
                difference = describe_difference(row.target, seen, row.value_type)
                message = f"Read-back {difference} after {verify_timeout:g} s"
                updates.append(_verified(name, RestoreItemStatus.MISMATCH, seen, row, message))
            else:
                message = f"No read-back within {verify_timeout:g} s"
                updates.append(_verified(name, RestoreItemStatus.TIMEOUT, None, row, message))
        self.recorder.submit(_record, self.item_ids, _VERIFY_FIELDS, updates, None)
        self.pending.clear()

    def settle(self, names: list[str], readings: dict) -> None:
        """Record the items of `names` (pending) that `readings` decide; leave the others pending."""
        verified: dict[int, list[tuple]] = {0: [], 1: [], 2: []}  # by the read-back column used
        failed = []
        pending, last_seen = self.pending, self.last_seen
        for name in names:
            row = pending[name]
            result = readings.get(row.read_back_from)
            if result is None or result.reading is None:
                error = result.error if result is not None else "no result"
                if error in (epics_io.DISCONNECTED, epics_io.NO_READ_ACCESS):
                    status = put_failure(error)  # disconnected, or failed for no read access
                    failed.append(_verified(name, status, None, row, f"Read-back: {error}"))
                    del pending[name]
                continue
            value = result.reading.value
            last_seen[name] = value
            target = row.target
            # A float equal to its target is within any tolerance: most read-backs, checked without
            # the general rule (NaN is never equal, and takes the rule).
            if (value.__class__ is float and value == target) or within_tolerance(
                target, value, row.value_type, row.abs_tolerance, row.rel_tolerance
            ):
                columns = fit_columns(row.value_type, value)
                used = next((i for i, column in enumerate(columns) if column is not None), 0)
                verified[used].append((name, columns[used]))
                del pending[name]
        now = timezone.now()
        for used, rows in verified.items():
            if rows:
                # A verified item keeps its message (e.g. that completion was not confirmed).
                constants = {"status": RestoreItemStatus.VERIFIED, "verified_at": now}
                self.recorder.submit(_record, self.item_ids, [_READBACK_COLUMNS[used]], rows, constants)
        if failed:
            self.recorder.submit(_record, self.item_ids, _VERIFY_FIELDS, failed, None)

    def _address(self, name: str) -> str:
        return self.pending[name].read_back_from


def _record(item_ids: Future, columns: list[str], rows: list[tuple], constants: dict | None) -> None:
    """On the recorder, after the items exist: update_rows() with the rows' PV names as item ids."""
    ids = item_ids.result()
    update_rows(RestoreItem, columns, [(ids[name], *values) for name, *values in rows], constants=constants)


def _cached_readings(addresses: list[str]) -> dict[str, epics_io.ReadResult]:
    """The monitor's connected values of `addresses`, shaped like direct-read results."""
    results = {}
    for address, value in live.read_values(addresses).items():
        if value is not None and value.connected:
            results[address] = epics_io.ReadResult(address, value)
    return results


_READBACK_COLUMNS = ["readback_num", "readback_str", "readback_array"]
_VERIFY_FIELDS = ["status", *_READBACK_COLUMNS, "message", "verified_at"]


def _verified(name: str, status: str, value, row: PlanRow, message: str) -> tuple:
    """A _record() row of _VERIFY_FIELDS for an item that did not verify."""
    return (name, status, *fit_columns(row.value_type, value), message[:200], None)
