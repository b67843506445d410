"""Restore: preview, staged execution, verification, resume after a crash, undo.

Unit tests drive a fake EpicsService (pvs.epics_io is the one module that owns Channel Access);
the `ioc` tests use the real simulated IOC.
"""

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from monitor import live
from pvs import epics_io
from pvs.models import PV
from snapshots import restore as restore_service
from snapshots.models import (
    LiveSource,
    Restore,
    RestoreAction,
    RestoreItemStatus,
    RestoreStatus,
    Snapshot,
    SnapshotMode,
    SnapshotOrigin,
    SnapshotValue,
    ValueType,
)
from snapshots.restore import (
    RestoreBusy,
    RestoreError,
    execute_restore,
    preview_restore,
    resume_restore,
    undo_restore,
)


class CrashingPut(Exception):
    """The fake IOC's way of killing the worker in the middle of a put."""


class FakeIOC:
    """An in-memory EpicsService: setpoints, read-backs that follow them, dead and denied PVs.

    `puts` counts puts per address; `put_log` keeps their order. A read-back follows its setpoint
    plus `offsets[setpoint]`, unless frozen in `frozen_readbacks` (never settles).
    """

    def __init__(self):
        self.values: dict[str, object] = {}
        self.kinds: dict[str, str] = {}
        self.readbacks: dict[str, str] = {}
        self.offsets: dict[str, float] = {}
        self.frozen_readbacks: dict[str, object] = {}
        self.dead: set[str] = set()
        self.denied: set[str] = set()
        self.silent_readbacks: set[str] = set()
        self.puts: Counter = Counter()
        self.put_log: list[tuple[str, object, bool]] = []
        self.reads: list[list[str]] = []
        self.crash_after: int | None = None
        self.connect_calls = 0

    def add(self, address, value, kind="float", readback=None):
        self.values[address], self.kinds[address] = value, kind
        if readback:
            self.readbacks[readback] = address

    def value_of(self, address):
        if address in self.frozen_readbacks:
            return self.frozen_readbacks[address]
        if address in self.readbacks:
            setpoint = self.readbacks[address]
            return self.values[setpoint] + self.offsets.get(setpoint, 0.0)
        return self.values[address]

    def connect(self, addresses, timeout):
        self.connect_calls += 1
        return {a for a in addresses if a not in self.dead and (a in self.values or a in self.readbacks)}

    def read(self, addresses, timeout=2.0):
        addresses = list(addresses)
        self.reads.append(addresses)
        results = {}
        for a in addresses:
            if a in self.dead:
                results[a] = epics_io.ReadResult(a, None, epics_io.DISCONNECTED)
            elif a in self.silent_readbacks:
                results[a] = epics_io.ReadResult(a, None, epics_io.TIMEOUT)
            else:
                kind = self.kinds.get(self.readbacks.get(a, a), "float")
                reading = epics_io.Reading(a, kind, self.value_of(a), 0, 0, time.time(), time.time())
                results[a] = epics_io.ReadResult(a, reading, None)
        return results

    def put(self, requests, timeout=5.0, max_outstanding=2000):
        results = {}
        for request in requests:
            if self.crash_after is not None and len(self.put_log) >= self.crash_after:
                raise CrashingPut("worker killed mid-stage")
            a = request.address
            if a in self.dead:
                results[a] = epics_io.PutResult(a, False, epics_io.DISCONNECTED, False)
                continue
            if a in self.denied:
                results[a] = epics_io.PutResult(a, False, epics_io.NO_WRITE_ACCESS, False)
                continue
            self.puts[a] += 1
            self.put_log.append((a, request.value, request.wait))
            self.values[a] = request.value
            results[a] = epics_io.PutResult(a, True, None, request.wait)
        return results

    def metadata(self, addresses):
        return {
            a: None if a in self.dead else epics_io.Metadata(a, self.kinds.get(a, "float"), 1, write_access=a not in self.denied)
            for a in addresses
        }


@pytest.fixture
def ioc(redis_db):
    return FakeIOC()


@pytest.fixture
def undo_snapshots(monkeypatch):
    """The real take_undo_snapshot (a direct read through the io), recording what it was asked for."""
    taken = []
    real = restore_service.take_undo_snapshot

    def take(*, restore, pvs, user, io):
        snapshot = real(restore=restore, pvs=pvs, user=user, io=io)
        taken.append((snapshot, sorted(pv.setpoint_address for pv in pvs)))
        return snapshot

    monkeypatch.setattr(restore_service, "take_undo_snapshot", take)
    return taken


@pytest.fixture
def user(make_user):
    return make_user("operator", "operator")


def make_pv(address, *, readback="", stage=0, read_only=False, wait=False, abs_tolerance=0.0, rel_tolerance=0.0):
    return PV.objects.create(
        setpoint_address=address, readback_address=readback, restore_stage=stage, read_only=read_only,
        wait_for_completion=wait, abs_tolerance=abs_tolerance, rel_tolerance=rel_tolerance,
    )  # fmt: skip


def make_snapshot(user, saved: dict) -> Snapshot:
    """A snapshot holding `saved`: {PV or address: value} (None = disconnected when saved)."""
    snapshot = Snapshot.objects.create(title="Saved", created_by=user, mode=SnapshotMode.DIRECT)
    for key, value in saved.items():
        pv = key if isinstance(key, PV) else None
        name = pv.setpoint_address if pv else key
        if value is None:
            fields = {"value_type": ValueType.NONE, "connected": False, "reason": "disconnected"}
        elif isinstance(value, str):
            fields = {"value_type": ValueType.STRING, "setpoint_str": value}
        elif isinstance(value, list):
            fields = {"value_type": ValueType.FLOAT_ARRAY, "setpoint_array": value}
        else:
            fields = {"value_type": ValueType.FLOAT, "setpoint_num": value}
        SnapshotValue.objects.create(snapshot=snapshot, pv=pv, pv_name=name, source="direct", **fields)
    return snapshot


def actions(preview) -> dict[str, str]:
    return dict(preview.items.values_list("pv_name", "action"))


def statuses(restore) -> dict[str, str]:
    return dict(restore.items.values_list("pv_name", "status"))


def simple_setup(ioc, user, count=3, **pv_options):
    """`count` PVs with read-backs, live at 0.0, saved at 1.0, 2.0, ..."""
    saved = {}
    for i in range(count):
        pv = make_pv(f"T:SP{i}", readback=f"T:RB{i}", **pv_options)
        ioc.add(pv.setpoint_address, 0.0, readback=pv.readback_address)
        saved[pv] = float(i + 1)
    return make_snapshot(user, saved)


# Preview ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_preview_classifies_every_kind_of_pv(ioc, user):
    differs = make_pv("P:DIFFERS", abs_tolerance=0.1)
    same = make_pv("P:SAME", abs_tolerance=0.1)
    read_only = make_pv("P:RO", read_only=True)
    dead = make_pv("P:DEAD")
    denied = make_pv("P:DENIED")
    never_saved = make_pv("P:NOSAVE")
    for address, value in [("P:DIFFERS", 1.0), ("P:SAME", 5.05), ("P:RO", 0.0), ("P:DENIED", 0.0), ("P:NOSAVE", 1.0)]:
        ioc.add(address, value)
    ioc.dead.add("P:DEAD")
    ioc.denied.add("P:DENIED")
    snapshot = make_snapshot(user, {
        differs: 2.0, same: 5.0, read_only: 9.0, dead: 1.0, denied: 1.0, never_saved: None, "P:GONE": 3.0,
    })  # fmt: skip

    preview = preview_restore(snapshot, created_by=user, io=ioc)

    assert actions(preview) == {
        "P:DIFFERS": RestoreAction.WRITE,
        "P:SAME": RestoreAction.SKIP_UNCHANGED,
        "P:RO": RestoreAction.SKIP_READ_ONLY,
        "P:DEAD": RestoreAction.SKIP_DISCONNECTED,
        "P:DENIED": RestoreAction.SKIP_NO_WRITE_ACCESS,
        "P:NOSAVE": RestoreAction.SKIP_NO_SAVED_VALUE,
        "P:GONE": RestoreAction.SKIP_NOT_IN_REGISTRY,
    }
    counts = (preview.write_count, preview.unchanged_count, preview.read_only_count, preview.disconnected_count,
              preview.no_write_access_count, preview.no_saved_value_count, preview.not_in_registry_count)  # fmt: skip
    assert counts == (1, 1, 1, 1, 1, 1, 1)
    assert preview.selection_size == 7
    assert preview.live_source == LiveSource.DIRECT


@pytest.mark.django_db
def test_preview_records_target_live_value_and_tolerance_verdict(ioc, user):
    pv = make_pv("P:A", readback="P:A:RBV", stage=3, wait=True, abs_tolerance=0.5)
    ioc.add("P:A", 7.0)
    preview = preview_restore(make_snapshot(user, {pv: 1.0}), created_by=user, io=ioc)
    item = preview.items.get()
    assert (item.target_value, item.live_value, item.within_tolerance) == (1.0, 7.0, False)
    assert (item.readback_name, item.stage, item.wait_for_completion, item.abs_tolerance) == ("P:A:RBV", 3, True, 0.5)


@pytest.mark.django_db
def test_preview_writes_unchanged_pvs_when_asked(ioc, user):
    pv = make_pv("P:SAME", abs_tolerance=0.1)
    ioc.add("P:SAME", 5.0)
    preview = preview_restore(make_snapshot(user, {pv: 5.0}), created_by=user, include_unchanged=True, io=ioc)
    assert actions(preview) == {"P:SAME": RestoreAction.WRITE}
    assert preview.items.get().within_tolerance is True


@pytest.mark.django_db
def test_preview_compares_strings_and_arrays(ioc, user):
    text, wave = make_pv("P:TEXT"), make_pv("P:WAVE", abs_tolerance=0.01)
    ioc.add("P:TEXT", "beam on", kind="string")
    ioc.add("P:WAVE", [1.0, 2.0], kind="float_array")
    preview = preview_restore(make_snapshot(user, {text: "beam on", wave: [1.0, 2.0, 3.0]}), created_by=user, io=ioc)
    assert actions(preview) == {"P:TEXT": RestoreAction.SKIP_UNCHANGED, "P:WAVE": RestoreAction.WRITE}


@pytest.mark.django_db
def test_preview_limited_to_a_selection(ioc, user):
    snapshot = simple_setup(ioc, user, count=3)
    preview = preview_restore(snapshot, created_by=user, pvs=PV.objects.filter(setpoint_address="T:SP1"), io=ioc)
    assert actions(preview) == {"T:SP1": RestoreAction.WRITE}


@pytest.mark.django_db
def test_preview_uses_the_monitor_cache_when_its_heartbeat_is_fresh(ioc, user, redis_db):
    a, b = make_pv("P:A"), make_pv("P:B")
    ioc.add("P:B", 2.0)
    now = time.time()
    redis_db.hset(live.VALUES_KEY, "P:A", live.encode_value(live.LiveValue("P:A", "float", 1.0, 0, 0, now, now, True)))
    live.write_heartbeat(redis_db, live.Shard(0, 1), {"synced": True})

    preview = preview_restore(make_snapshot(user, {a: 1.0, b: 1.0}), created_by=user, io=ioc)

    assert preview.live_source == LiveSource.CACHE
    assert ioc.reads == [["P:B"]]  # only the address the cache lacks
    assert actions(preview) == {"P:A": RestoreAction.SKIP_UNCHANGED, "P:B": RestoreAction.WRITE}


@pytest.mark.django_db
def test_preview_reads_directly_when_the_monitor_is_stale(ioc, user, redis_db):
    pv = make_pv("P:A")
    ioc.add("P:A", 2.0)
    now = time.time()
    stale = live.LiveValue("P:A", "float", 1.0, 0, 0, now - 60, now - 60, True)
    redis_db.hset(live.VALUES_KEY, "P:A", live.encode_value(stale))
    live.write_heartbeat(redis_db, live.Shard(0, 1), {"synced": True})
    redis_db.set(live.heartbeat_key(live.Shard(0, 1)), '{"written_at": %f, "synced": true}' % (now - 60))

    preview = preview_restore(make_snapshot(user, {pv: 1.0}), created_by=user, io=ioc)

    assert preview.live_source == LiveSource.DIRECT
    assert preview.items.get().live_value == 2.0


@pytest.mark.django_db
def test_cached_disconnected_pv_is_skipped(ioc, user, redis_db):
    pv = make_pv("P:A")
    redis_db.hset(live.VALUES_KEY, "P:A", live.encode_value(live.LiveValue("P:A", "float", None, 0, 0, 0, 0, False)))
    live.write_heartbeat(redis_db, live.Shard(0, 1), {"synced": True})
    preview = preview_restore(make_snapshot(user, {pv: 1.0}), created_by=user, io=ioc)
    assert actions(preview) == {"P:A": RestoreAction.SKIP_DISCONNECTED}


# Execute ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_execute_writes_and_verifies_every_targeted_pv(ioc, user, undo_snapshots):
    snapshot = simple_setup(ioc, user, count=3)
    preview = preview_restore(snapshot, created_by=user, io=ioc)

    restore = execute_restore(preview, user=user, io=ioc, verify_timeout=1.0)

    assert restore.status == RestoreStatus.SUCCEEDED
    assert set(statuses(restore).values()) == {RestoreItemStatus.VERIFIED}
    assert ioc.values == {"T:SP0": 1.0, "T:SP1": 2.0, "T:SP2": 3.0}
    assert restore.summary == {RestoreItemStatus.VERIFIED: 3}
    item = restore.items.get(pv_name="T:SP1")
    assert (item.old_value, item.target_value, item.readback_value) == (0.0, 2.0, 2.0)
    assert item.written_at and item.verified_at


@pytest.mark.django_db
def test_undo_snapshot_holds_the_values_before_writing(ioc, user, undo_snapshots):
    snapshot = simple_setup(ioc, user, count=2)
    restore = execute_restore(preview_restore(snapshot, created_by=user, io=ioc), user=user, io=ioc)
    undo = restore.undo_snapshot
    assert undo.origin == SnapshotOrigin.PRE_RESTORE
    assert dict(undo.values.values_list("pv_name", "setpoint_num")) == {"T:SP0": 0.0, "T:SP1": 0.0}


@pytest.mark.django_db
def test_stages_are_written_in_ascending_order(ioc, user, undo_snapshots):
    saved = {}
    for address, stage in [("S:C", 2), ("S:A", 0), ("S:B", 1), ("S:A2", 0)]:
        pv = make_pv(address, stage=stage)
        ioc.add(address, 0.0)
        saved[pv] = 1.0
    execute_restore(preview_restore(make_snapshot(user, saved), created_by=user, io=ioc), user=user, io=ioc)
    order = [address for address, _value, _wait in ioc.put_log]
    assert sorted(order[:2]) == ["S:A", "S:A2"] and order[2:] == ["S:B", "S:C"]


@pytest.mark.django_db
def test_puts_wait_for_completion_only_where_the_pv_says_so(ioc, user, undo_snapshots):
    slow, fast = make_pv("W:SLOW", wait=True), make_pv("W:FAST")
    ioc.add("W:SLOW", 0.0)
    ioc.add("W:FAST", 0.0)
    execute_restore(preview_restore(make_snapshot(user, {slow: 1.0, fast: 1.0}), created_by=user, io=ioc), user=user, io=ioc)
    assert {address: wait for address, _value, wait in ioc.put_log} == {"W:SLOW": True, "W:FAST": False}


def _verification_reads(reads: list[list[str]]) -> list[list[str]]:
    """The direct reads of read-backs alone (the undo capture reads setpoints with them)."""
    return [call for call in reads if call and all(a.startswith("T:RB") for a in call)]


def _cache_readbacks(redis_db, values: dict) -> None:
    """A fresh monitor whose cache holds `values` (address -> float)."""
    now = time.time()
    for address, value in values.items():
        redis_db.hset(live.VALUES_KEY, address, live.encode_value(live.LiveValue(address, "float", value, 0, 0, now, now, True)))
    live.write_heartbeat(redis_db, live.Shard(0, 1), {"synced": True})


@pytest.mark.django_db
def test_verification_reads_the_monitor_cache_while_it_is_fresh(ioc, user, undo_snapshots, redis_db):
    snapshot = simple_setup(ioc, user, count=2)
    preview = preview_restore(snapshot, created_by=user, io=ioc)
    _cache_readbacks(redis_db, {"T:RB0": 1.0, "T:RB1": 2.0})
    reads_before = len(ioc.reads)

    restore = execute_restore(preview, user=user, io=ioc, verify_timeout=1.0)

    assert set(statuses(restore).values()) == {RestoreItemStatus.VERIFIED}
    assert _verification_reads(ioc.reads[reads_before:]) == []


@pytest.mark.django_db
def test_what_the_cache_does_not_confirm_gets_one_direct_read(ioc, user, undo_snapshots, redis_db):
    snapshot = simple_setup(ioc, user, count=2)
    preview = preview_restore(snapshot, created_by=user, io=ioc)
    _cache_readbacks(redis_db, {"T:RB0": 1.0, "T:RB1": 0.0})  # RB1's cached value is behind
    reads_before = len(ioc.reads)

    restore = execute_restore(preview, user=user, io=ioc, verify_timeout=0.3)

    assert set(statuses(restore).values()) == {RestoreItemStatus.VERIFIED}
    assert _verification_reads(ioc.reads[reads_before:]) == [["T:RB1"]]


@pytest.mark.django_db
def test_read_backs_are_verified_after_the_last_stage(ioc, user, undo_snapshots):
    first, second = make_pv("T:SP0", readback="T:RB0", stage=0), make_pv("T:SP1", readback="T:RB1", stage=1)
    for pv in (first, second):
        ioc.add(pv.setpoint_address, 0.0, readback=pv.readback_address)
    preview = preview_restore(make_snapshot(user, {first: 1.0, second: 2.0}), created_by=user, io=ioc)
    real_put = ioc.put

    def put(requests, **kwargs):
        results = real_put(requests, **kwargs)
        if [r.address for r in requests] == ["T:SP1"]:
            ioc.offsets["T:SP0"] = 5.0  # stage 1 (an enable, a mode) moves stage 0's read-back
        return results

    ioc.put = put
    restore = execute_restore(preview, user=user, io=ioc, verify_timeout=0.3)

    assert statuses(restore) == {"T:SP0": RestoreItemStatus.MISMATCH, "T:SP1": RestoreItemStatus.VERIFIED}


@pytest.mark.django_db
def test_readback_outside_tolerance_is_a_mismatch(ioc, user, undo_snapshots):
    snapshot = simple_setup(ioc, user, count=2, abs_tolerance=0.1)
    ioc.offsets["T:SP1"] = 0.5
    restore = execute_restore(preview_restore(snapshot, created_by=user, io=ioc), user=user, io=ioc, verify_timeout=0.3)
    assert statuses(restore) == {"T:SP0": RestoreItemStatus.VERIFIED, "T:SP1": RestoreItemStatus.MISMATCH}
    item = restore.items.get(pv_name="T:SP1")
    assert item.readback_value == 2.5 and "expected 2.0" in item.message
    assert restore.status == RestoreStatus.PARTIAL


@pytest.mark.django_db
def test_readback_that_never_answers_times_out(ioc, user, undo_snapshots):
    snapshot = simple_setup(ioc, user, count=2)
    ioc.silent_readbacks.add("T:RB0")
    started = time.monotonic()
    restore = execute_restore(preview_restore(snapshot, created_by=user, io=ioc), user=user, io=ioc, verify_timeout=0.3)
    assert time.monotonic() - started < 2.0
    assert statuses(restore) == {"T:SP0": RestoreItemStatus.TIMEOUT, "T:SP1": RestoreItemStatus.VERIFIED}


@pytest.mark.django_db
def test_readback_that_settles_late_is_verified_by_a_later_round(ioc, user, undo_snapshots, monkeypatch):
    snapshot = simple_setup(ioc, user, count=1)
    ioc.frozen_readbacks["T:RB0"] = 0.0
    reads = []
    original_read = ioc.read

    def settle_on_third_round(addresses, timeout=2.0):
        reads.append(list(addresses))
        if len(reads) == 3:
            ioc.frozen_readbacks.clear()
        return original_read(addresses, timeout)

    monkeypatch.setattr(ioc, "read", settle_on_third_round)
    restore = execute_restore(preview_restore(snapshot, created_by=user, io=ioc), user=user, io=ioc, verify_timeout=2.0)
    assert statuses(restore) == {"T:SP0": RestoreItemStatus.VERIFIED}


@pytest.mark.django_db
def test_without_verification_written_is_success(ioc, user, undo_snapshots):
    snapshot = simple_setup(ioc, user, count=2)
    preview = preview_restore(snapshot, created_by=user, io=ioc)
    ioc.reads.clear()
    restore = execute_restore(preview, user=user, io=ioc, verify=False)
    assert restore.status == RestoreStatus.SUCCEEDED
    assert set(statuses(restore).values()) == {RestoreItemStatus.WRITTEN}
    assert len(ioc.reads) == 1  # the undo snapshot's; no read-back rounds


@pytest.mark.django_db
def test_read_only_pvs_are_never_written(ioc, user, undo_snapshots):
    ro, rw = make_pv("R:RO", read_only=True), make_pv("R:RW")
    ioc.add("R:RO", 0.0)
    ioc.add("R:RW", 0.0)
    preview = preview_restore(make_snapshot(user, {ro: 1.0, rw: 1.0}), created_by=user, include_unchanged=True, io=ioc)
    restore = execute_restore(preview, user=user, io=ioc)
    assert ioc.puts == {"R:RW": 1}
    assert list(restore.items.values_list("pv_name", flat=True)) == ["R:RW"]


@pytest.mark.django_db
def test_write_denied_at_execution_is_reported_and_others_are_written(ioc, user, undo_snapshots):
    snapshot = simple_setup(ioc, user, count=3)
    preview = preview_restore(snapshot, created_by=user, io=ioc)
    ioc.denied.add("T:SP1")  # access rights changed after the preview
    restore = execute_restore(preview, user=user, io=ioc)
    assert statuses(restore) == {
        "T:SP0": RestoreItemStatus.VERIFIED, "T:SP1": RestoreItemStatus.NO_WRITE_ACCESS, "T:SP2": RestoreItemStatus.VERIFIED,
    }  # fmt: skip
    assert restore.items.get(pv_name="T:SP1").message == "Put: no write access"
    assert restore.status == RestoreStatus.PARTIAL


@pytest.mark.django_db
def test_ioc_dying_after_preview_costs_one_connect_and_marks_its_pvs_disconnected(ioc, user, undo_snapshots):
    snapshot = simple_setup(ioc, user, count=3)
    preview = preview_restore(snapshot, created_by=user, io=ioc)
    ioc.dead |= {"T:SP1", "T:RB1"}
    restore = execute_restore(preview, user=user, io=ioc)
    assert ioc.connect_calls == 1
    assert "T:SP1" not in ioc.puts
    assert statuses(restore)["T:SP1"] == RestoreItemStatus.DISCONNECTED
    assert "T:SP1" not in undo_snapshots[0][1]
    assert statuses(restore)["T:SP0"] == RestoreItemStatus.VERIFIED


@pytest.mark.django_db
def test_preview_with_nothing_to_write_executes_to_an_empty_success(ioc, user, undo_snapshots):
    pv = make_pv("P:SAME")
    ioc.add("P:SAME", 1.0)
    preview = preview_restore(make_snapshot(user, {pv: 1.0}), created_by=user, io=ioc)
    restore = execute_restore(preview, user=user, io=ioc)
    assert restore.status == RestoreStatus.SUCCEEDED and not restore.items.exists()
    assert restore.undo_snapshot.origin == SnapshotOrigin.PRE_RESTORE and not ioc.puts


# Refusals --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_expired_preview_is_refused(ioc, user, undo_snapshots):
    preview = preview_restore(simple_setup(ioc, user), created_by=user, io=ioc)
    preview.expires_at = timezone.now() - timedelta(seconds=1)
    preview.save(update_fields=["expires_at"])
    with pytest.raises(RestoreError, match="expired"):
        execute_restore(preview, user=user, io=ioc)
    assert not ioc.puts


@pytest.mark.django_db
def test_executed_preview_is_refused(ioc, user, undo_snapshots):
    preview = preview_restore(simple_setup(ioc, user), created_by=user, io=ioc)
    execute_restore(preview, user=user, io=ioc)
    ioc.puts.clear()
    with pytest.raises(RestoreError, match="already executed"):
        execute_restore(preview, user=user, io=ioc)
    assert not ioc.puts


@pytest.mark.django_db
def test_preview_is_refused_after_a_registry_edit_of_its_pvs(ioc, user, undo_snapshots):
    preview = preview_restore(simple_setup(ioc, user), created_by=user, io=ioc)
    PV.objects.filter(setpoint_address="T:SP0").update(read_only=True)
    with pytest.raises(RestoreError, match="edited or deleted"):
        execute_restore(preview, user=user, io=ioc)
    assert not ioc.puts


@pytest.mark.django_db
def test_preview_is_refused_after_one_of_its_pvs_was_deleted(ioc, user, undo_snapshots):
    preview = preview_restore(simple_setup(ioc, user), created_by=user, io=ioc)
    PV.objects.filter(setpoint_address="T:SP2").delete()
    with pytest.raises(RestoreError, match="edited or deleted"):
        execute_restore(preview, user=user, io=ioc)


@pytest.mark.django_db
def test_edits_to_pvs_outside_the_preview_do_not_matter(ioc, user, undo_snapshots):
    preview = preview_restore(simple_setup(ioc, user), created_by=user, io=ioc)
    make_pv("OTHER:PV")
    assert execute_restore(preview, user=user, io=ioc).status == RestoreStatus.SUCCEEDED


# Resume ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_resume_after_a_crash_mid_stage_writes_each_pv_exactly_once(ioc, user, undo_snapshots):
    saved = {}
    for i in range(6):
        pv = make_pv(f"C:{i}", stage=0 if i < 4 else 1)
        ioc.add(pv.setpoint_address, 0.0)
        saved[pv] = float(i + 10)
    preview = preview_restore(make_snapshot(user, saved), created_by=user, io=ioc)
    ioc.crash_after = 2  # two of stage 0's four puts reach the IOC, then the worker dies

    with pytest.raises(CrashingPut):
        execute_restore(preview, user=user, io=ioc)
    restore = preview.restore
    restore.refresh_from_db()
    assert restore.writing_stage == 0
    assert set(restore.items.values_list("status", flat=True)) == {RestoreItemStatus.PENDING}

    ioc.crash_after = None
    resumed = execute_restore(preview, user=user, io=ioc)  # the redelivered task

    assert resumed.pk == restore.pk and resumed.runs == 2
    assert ioc.puts == {f"C:{i}": 1 for i in range(6)}
    assert ioc.values == {f"C:{i}": float(i + 10) for i in range(6)}
    assert set(statuses(resumed).values()) == {RestoreItemStatus.VERIFIED}
    assert len(undo_snapshots) == 1
    found = resumed.items.filter(message__startswith="Found applied").count()
    assert found == 2


@pytest.mark.django_db(transaction=True)
def test_items_are_recorded_beside_the_puts_on_a_second_connection(ioc, user, undo_snapshots, monkeypatch):
    # Outside a caller's transaction (as in a worker) the items and results are written by the
    # recorder's own connection while the puts go out.
    backends = set()
    real = restore_service._record_stage

    def record(*args):
        backends.add(_backend_pid())
        real(*args)

    monkeypatch.setattr(restore_service, "_record_stage", record)
    for i in range(6):
        make_pv(f"C:{i}", readback=f"C:RB{i}", stage=i % 3)
        ioc.add(f"C:{i}", 0.0, readback=f"C:RB{i}")
    saved = {pv: float(pv.pk) for pv in PV.objects.all()}
    restore = execute_restore(preview_restore(make_snapshot(user, saved), created_by=user, io=ioc), user=user, io=ioc)

    assert backends and _backend_pid() not in backends
    assert restore.status == RestoreStatus.SUCCEEDED and restore.writing_stage is None
    assert set(statuses(restore).values()) == {RestoreItemStatus.VERIFIED}
    assert [stage for stage, in restore.items.order_by("pv_name").values_list("stage")] == [0, 1, 2, 0, 1, 2]
    assert ioc.puts == {f"C:{i}": 1 for i in range(6)}


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_a_run_that_died_before_its_items_were_recorded_is_resumed_without_writing_twice(
    ioc, user, undo_snapshots, monkeypatch
):
    # The undo snapshot is committed and the first stage's puts go out while the recorder creates
    # the items. Here it fails (as if the worker died first): the resume creates them, reads back
    # the stages already marked as written and writes only what is not applied.
    saved = {}
    for i in range(6):
        pv = make_pv(f"C:{i}", stage=i // 2)
        ioc.add(pv.setpoint_address, 0.0)
        saved[pv] = float(i + 10)
    preview = preview_restore(make_snapshot(user, saved), created_by=user, io=ioc)

    first_put, put = threading.Event(), ioc.put

    def put_and_tell(*args, **kwargs):
        try:
            return put(*args, **kwargs)
        finally:
            first_put.set()

    def lost(*args):
        first_put.wait(5)
        raise psycopg.OperationalError("connection lost")

    monkeypatch.setattr(ioc, "put", put_and_tell)
    monkeypatch.setattr(restore_service, "_create_items", lost)
    with pytest.raises(psycopg.OperationalError):
        execute_restore(preview, user=user, io=ioc)
    restore = Restore.objects.get(preview=preview)
    assert restore.undo_snapshot_id is not None and not restore.items.exists()
    written_before = dict(ioc.puts)
    assert written_before and restore.writing_stage == max(int(a[2:]) // 2 for a in written_before)

    monkeypatch.undo()
    resumed = execute_restore(preview, user=user, io=ioc)

    assert resumed.runs == 2 and resumed.status == RestoreStatus.SUCCEEDED
    assert ioc.puts == {f"C:{i}": 1 for i in range(6)}
    assert ioc.values == {f"C:{i}": float(i + 10) for i in range(6)}
    assert set(statuses(resumed).values()) == {RestoreItemStatus.VERIFIED}
    assert resumed.items.filter(message__startswith="Found applied").count() == len(written_before)
    assert len(undo_snapshots) == 1


@pytest.mark.django_db
def test_a_pv_edited_while_connecting_is_neither_written_nor_left_pending(ioc, user, undo_snapshots, monkeypatch):
    # The claim checked the registry; an edit during the connect window drops the PV from the
    # undo snapshot, so from the plan and the pending items alike.
    preview = preview_restore(simple_setup(ioc, user), created_by=user, io=ioc)
    connect = ioc.connect

    def connect_and_edit(addresses, timeout):
        PV.objects.filter(setpoint_address="T:SP0").update(setpoint_address="T:SP0_NEW")
        ioc.dead.add("T:SP0_NEW")  # no IOC serves the new name
        return connect(addresses, timeout)

    monkeypatch.setattr(ioc, "connect", connect_and_edit)
    restore = execute_restore(preview, user=user, io=ioc)

    assert ioc.puts == {"T:SP1": 1, "T:SP2": 1}
    assert statuses(restore) == {
        "T:SP0": RestoreItemStatus.DISCONNECTED, "T:SP1": RestoreItemStatus.VERIFIED, "T:SP2": RestoreItemStatus.VERIFIED,
    }  # fmt: skip
    assert restore.status == RestoreStatus.PARTIAL


@pytest.mark.django_db
def test_creating_the_items_again_adds_nothing(ioc, user, undo_snapshots):
    # A killed runner's INSERT can still commit while a resume runs its own.
    restore = execute_restore(preview_restore(simple_setup(ioc, user), created_by=user, io=ioc), user=user, io=ioc)
    before = statuses(restore)
    restore_service._create_items(restore.pk, restore.preview_id, restore.undo_snapshot_id, 2.0)
    assert statuses(restore) == before and restore.items.count() == 3


@pytest.mark.django_db
def test_resume_of_a_finished_restore_changes_nothing(ioc, user, undo_snapshots):
    restore = execute_restore(preview_restore(simple_setup(ioc, user), created_by=user, io=ioc), user=user, io=ioc)
    ioc.puts.clear()
    assert resume_restore(restore, io=ioc).status == RestoreStatus.SUCCEEDED
    assert not ioc.puts


@pytest.mark.django_db(transaction=True)
def test_a_second_runner_is_refused_while_the_first_holds_the_restore(ioc, user, undo_snapshots):
    preview = preview_restore(simple_setup(ioc, user), created_by=user, io=ioc)
    ioc.crash_after = 0
    with pytest.raises(CrashingPut):
        execute_restore(preview, user=user, io=ioc)
    restore = preview.restore
    db = settings.DATABASES["default"]
    with psycopg.connect(dbname=db["NAME"], user=db["USER"], password=db["PASSWORD"] or None,
                         host=db["HOST"], port=db["PORT"], autocommit=True) as other:  # fmt: skip
        other.execute("SELECT pg_advisory_lock(%s::int, %s::int)", [restore_service._LOCK_NAMESPACE, restore.pk])
        with pytest.raises(RestoreBusy):
            resume_restore(restore, io=ioc)
        # Explicitly: a closed connection's locks go when its backend exits, a moment later.
        other.execute("SELECT pg_advisory_unlock(%s::int, %s::int)", [restore_service._LOCK_NAMESPACE, restore.pk])
    ioc.crash_after = None
    assert resume_restore(restore, io=ioc).status == RestoreStatus.SUCCEEDED


# Undo ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_undo_previews_the_undo_snapshot_for_the_restored_pvs(ioc, user, undo_snapshots):
    snapshot = simple_setup(ioc, user, count=3)
    make_pv("T:UNRELATED")
    ioc.add("T:UNRELATED", 0.0)
    preview = preview_restore(snapshot, created_by=user, pvs=PV.objects.exclude(setpoint_address="T:SP2"), io=ioc)
    restore = execute_restore(preview, user=user, io=ioc)

    undo = undo_restore(restore, user=user, io=ioc)

    assert undo.snapshot_id == restore.undo_snapshot_id
    assert actions(undo) == {"T:SP0": RestoreAction.WRITE, "T:SP1": RestoreAction.WRITE}
    assert dict(undo.items.values_list("pv_name", "target_num")) == {"T:SP0": 0.0, "T:SP1": 0.0}
    execute_restore(undo, user=user, io=ioc)
    assert ioc.values["T:SP0"] == 0.0 and ioc.values["T:SP1"] == 0.0


# Against the simulated IOC ---------------------------------------------------------------------


def independent_ca(puts: dict | None = None, gets: list | None = None) -> dict:
    """caput (with wait) then caget (use_monitor=False) in a separate process.

    A process of its own: pyepics' preemptive context and the EpicsService's non-preemptive
    one cannot share this test process.
    """
    script = (
        "import json, sys, epics\n"
        "args = json.loads(sys.argv[1])\n"
        "ok = {a: epics.caput(a, v, wait=True, timeout=5) for a, v in args['puts'].items()}\n"
        "got = {a: epics.caget(a, use_monitor=False, timeout=5) for a in args['gets']}\n"
        "print(json.dumps({'ok': ok, 'got': {a: (v.tolist() if hasattr(v, 'tolist') else v) for a, v in got.items()}}))\n"
    )
    argument = json.dumps({"puts": puts or {}, "gets": gets or []})
    done = subprocess.run([sys.executable, "-c", script, argument], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.ioc
@pytest.mark.django_db(transaction=True)
def test_restore_against_the_simulated_ioc(sim_ioc, user, redis_db):
    from pvs import sim
    from pvs.importers import import_pvs
    from snapshots.services import take_snapshot

    assert import_pvs("sim.csv", sim_ioc.registry_csv.read_bytes(), dry_run=False).ok
    io = epics_io.epics_service()
    pairs = sim_ioc.of_kind(sim.PAIR)[:5]
    ints = sim_ioc.of_kind(sim.INT)[:2]
    protected = sim_ioc.of_kind(sim.PROTECTED)[:1]
    changed = pairs + ints
    pvs = PV.objects.filter(setpoint_address__in=[p.setpoint for p in changed + protected])
    snapshot = take_snapshot(title="Before test", created_by=user, pvs=pvs, mode="direct", reader=io)
    saved = independent_ca(gets=[p.setpoint for p in changed])["got"]
    moved = {p.setpoint: saved[p.setpoint] + 10 * max(p.abs_tolerance, 1.0) for p in pairs}
    moved.update({p.setpoint: saved[p.setpoint] + 3 for p in ints})
    assert all(independent_ca(puts=moved)["ok"].values())

    preview = preview_restore(snapshot, created_by=user, pvs=pvs, io=io)
    assert {actions(preview)[p.setpoint] for p in changed} == {RestoreAction.WRITE}
    assert actions(preview)[protected[0].setpoint] != RestoreAction.WRITE
    restore = execute_restore(preview, user=user, io=io, verify_timeout=5.0)

    assert {statuses(restore)[p.setpoint] for p in changed} == {RestoreItemStatus.VERIFIED}
    now = independent_ca(gets=[p.setpoint for p in changed])["got"]
    for p in changed:
        assert now[p.setpoint] == pytest.approx(saved[p.setpoint], abs=max(p.abs_tolerance, 1e-9))
    assert dict(restore.undo_snapshot.values.values_list("pv_name", "setpoint_num")) == pytest.approx(
        {address: float(value) for address, value in moved.items()}
    )


# Admin -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_shows_restores_and_their_per_pv_results_read_only(ioc, user, undo_snapshots, admin_user, client):
    restore = execute_restore(preview_restore(simple_setup(ioc, user), created_by=user, io=ioc), user=user, io=ioc)
    client.force_login(admin_user)
    detail = client.get(f"/admin/snapshots/restore/{restore.pk}/change/")
    assert detail.status_code == 200 and b"3 PVs" in detail.content
    items = client.get(f"/admin/snapshots/restoreitem/?restore__id__exact={restore.pk}")
    assert items.status_code == 200 and b"T:SP2" in items.content and b"operator" in items.content
    assert client.get("/admin/snapshots/restore/").status_code == 200
    assert client.post(f"/admin/snapshots/restore/{restore.pk}/delete/").status_code == 403


@pytest.mark.django_db
def test_a_second_job_for_a_restore_being_run_fails_with_a_pointer_to_the_first(ioc, user, undo_snapshots):
    from jobs.models import Job, JobStatus, JobType
    from jobs.runner import run_job
    from snapshots.jobs import restore_handler

    preview = preview_restore(simple_setup(ioc, user), created_by=user, io=ioc)
    first = Job.objects.create(type=JobType.RESTORE, created_by=user, data={"preview": preview.id})
    ioc.crash_after = 0
    with pytest.raises(CrashingPut):
        execute_restore(preview, user=user, io=ioc, job=first)
    restore = preview.restore
    second = Job.objects.create(type=JobType.RESTORE, created_by=user, data={"preview": preview.id})
    db = settings.DATABASES["default"]
    with psycopg.connect(dbname=db["NAME"], user=db["USER"], password=db["PASSWORD"] or None,
                         host=db["HOST"], port=db["PORT"], autocommit=True) as other:  # fmt: skip
        other.execute("SELECT pg_advisory_lock(%s::int, %s::int)", [restore_service._LOCK_NAMESPACE, restore.pk])
        run_job(second.id, restore_handler)
        other.execute("SELECT pg_advisory_unlock(%s::int, %s::int)", [restore_service._LOCK_NAMESPACE, restore.pk])
    second.refresh_from_db()
    assert second.status == JobStatus.FAILED and f"job #{first.id}" in second.error


@pytest.mark.django_db
def test_a_restore_job_delivered_again_after_the_restore_finished_is_finished_not_failed(ioc, user, undo_snapshots):
    from jobs.models import Job, JobStatus, JobType
    from jobs.runner import run_job
    from snapshots.jobs import restore_handler

    preview = preview_restore(simple_setup(ioc, user), created_by=user, io=ioc)
    job = Job.objects.create(type=JobType.RESTORE, created_by=user, data={"preview": preview.pk})
    job.start()
    # The first delivery ran the restore to the end, then its worker died before job.finish().
    restore = execute_restore(preview, user=user, io=ioc, job=job)
    job.refresh_from_db()
    assert (job.status, job.result_id) == (JobStatus.RUNNING, restore.pk)

    run_job(job.pk, restore_handler)

    job.refresh_from_db()
    assert (job.status, job.result_id, job.error) == (JobStatus.SUCCEEDED, restore.pk, "")


@pytest.mark.django_db
def test_a_registry_edit_before_the_undo_snapshot_refuses_the_retry(ioc, user, undo_snapshots):
    preview = preview_restore(simple_setup(ioc, user), created_by=user, io=ioc)
    claimed = Restore.objects.create(preview=preview, snapshot=preview.snapshot, created_by=user, options={
        "verify": True, "verify_timeout": 1.0, "put_timeout": 1.0, "connect_timeout": 1.0,
    })  # the first runner claimed it and died before the undo snapshot
    PV.objects.filter(setpoint_address="T:SP0").update(setpoint_address="T:SP0_NEW")

    with pytest.raises(RestoreError, match="edited or deleted.*Nothing was written"):
        execute_restore(preview, user=user, io=ioc)

    claimed.refresh_from_db()
    assert (claimed.status, claimed.undo_snapshot_id, claimed.items.count()) == (RestoreStatus.PARTIAL, None, 0)
    assert ioc.puts == {} and undo_snapshots == []
