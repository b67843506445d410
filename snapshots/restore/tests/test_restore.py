"""Restore: preview, staged execution, verification, refusals, undo.

Unit tests drive a fake EpicsService (squirrel_site.testing.restore.FakeIOC; pvs.epics_io is the one module
that owns Channel Access); the `ioc` tests use the real simulated IOC. Resuming after a crash:
test_restore_resume.py.
"""

import html
import json
import subprocess
import sys
import time
from datetime import timedelta

import psycopg
import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from monitor import live
from pvs import epics_io
from pvs.models import PV
from snapshots.models import (
    LiveSource,
    Restore,
    RestoreAction,
    RestoreItemStatus,
    RestoreStatus,
    SnapshotOrigin,
    SnapshotValue,
)
from snapshots.restore import claim
from snapshots.restore.errors import RestoreError
from snapshots.restore.execute import execute_restore
from snapshots.restore.preview import preview_restore
from snapshots.restore.undo import undo_restore
from squirrel_site import epics_values
from squirrel_site.epics_values import Value
from squirrel_site.testing.restore import (
    CrashingPut,
    actions,
    make_pv,
    make_snapshot,
    simple_setup,
    statuses,
)

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
    snapshot = make_snapshot(
        user,
        {
            differs: 2.0,
            same: 5.0,
            read_only: 9.0,
            dead: 1.0,
            denied: 1.0,
            never_saved: None,
            "P:GONE": 3.0,
        },
    )

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
    counts = (
        preview.write_count,
        preview.unchanged_count,
        preview.read_only_count,
        preview.disconnected_count,
        preview.no_write_access_count,
        preview.no_saved_value_count,
        preview.not_in_registry_count,
    )
    assert counts == (1, 1, 1, 1, 1, 1, 1)
    assert preview.selection_size == 7
    assert preview.live_source == LiveSource.DIRECT


@pytest.mark.django_db
def test_a_structure_is_compared_but_skipped_as_not_writable_and_never_put(ioc, user, client):
    def table(*labels):
        return epics_values.structure_text("epics:nt/NTTable:1.0", [["labels", "as"]], {"labels": list(labels)})

    structure, double = make_pv("pva://T:TABLE"), make_pv("pva://T:D")
    ioc.add("pva://T:TABLE", table("b"), kind="structure")
    ioc.add("pva://T:D", 2.0)
    snapshot = make_snapshot(user, {double: 1.0})
    SnapshotValue.objects.create(
        snapshot=snapshot,
        pv=structure,
        pv_name="pva://T:TABLE",
        source="direct",
        value_type="structure",
        setpoint_str=table("a"),
    )

    preview = preview_restore(snapshot, created_by=user, io=ioc, include_unchanged=True)
    assert actions(preview) == {"pva://T:TABLE": RestoreAction.SKIP_NOT_WRITABLE, "pva://T:D": RestoreAction.WRITE}
    assert (preview.write_count, preview.not_writable_count) == (1, 1)
    assert preview.items.get(pv=structure).within_tolerance is False  # compared, and it differs
    client.force_login(user)
    page = client.get(reverse("snapshots:restore_preview", args=[preview.pk]), {"action": "all"}).text
    assert "Not writable (1)" in page and html.escape(RestoreAction.SKIP_NOT_WRITABLE.label) in page
    restore = execute_restore(preview, user=user, io=ioc)
    assert ioc.puts == {"pva://T:D": 1} and statuses(restore) == {"pva://T:D": RestoreItemStatus.VERIFIED}


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
    redis_db.hset(live.VALUES_KEY, "P:A", epics_values.pack(Value("P:A", "float", 1.0, 0, 0, now, now, True)))
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
    stale = Value("P:A", "float", 1.0, 0, 0, now - 60, now - 60, True)
    redis_db.hset(live.VALUES_KEY, "P:A", epics_values.pack(stale))
    live.write_heartbeat(redis_db, live.Shard(0, 1), {"synced": True})
    redis_db.set(live.heartbeat_key(live.Shard(0, 1)), '{"written_at": %f, "synced": true}' % (now - 60))

    preview = preview_restore(make_snapshot(user, {pv: 1.0}), created_by=user, io=ioc)

    assert preview.live_source == LiveSource.DIRECT
    assert preview.items.get().live_value == 2.0


@pytest.mark.django_db
def test_cached_disconnected_pv_is_skipped(ioc, user, redis_db):
    pv = make_pv("P:A")
    redis_db.hset(live.VALUES_KEY, "P:A", epics_values.pack(Value("P:A", "float", None, 0, 0, 0, 0, False)))
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
    execute_restore(
        preview_restore(make_snapshot(user, {slow: 1.0, fast: 1.0}), created_by=user, io=ioc), user=user, io=ioc
    )
    assert {address: wait for address, _value, wait in ioc.put_log} == {"W:SLOW": True, "W:FAST": False}


def _verification_reads(reads: list[list[str]]) -> list[list[str]]:
    """The direct reads of read-backs alone (the undo capture reads setpoints with them)."""
    return [call for call in reads if call and all(a.startswith("T:RB") for a in call)]


def _cache_readbacks(redis_db, values: dict) -> None:
    """A fresh monitor whose cache holds `values` (address -> float)."""
    now = time.time()
    for address, value in values.items():
        redis_db.hset(live.VALUES_KEY, address, epics_values.pack(Value(address, "float", value, 0, 0, now, now, True)))
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
        "T:SP0": RestoreItemStatus.VERIFIED,
        "T:SP1": RestoreItemStatus.NO_WRITE_ACCESS,
        "T:SP2": RestoreItemStatus.VERIFIED,
    }
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
        "got = {a: (v.tolist() if hasattr(v, 'tolist') else v) for a, v in got.items()}\n"
        "print(json.dumps({'ok': ok, 'got': got}))\n"
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
    from snapshots.capture.services import take_snapshot

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
    from snapshots.restore.runners import RestoreRunner

    preview = preview_restore(simple_setup(ioc, user), created_by=user, io=ioc)
    first = Job.objects.create(type=JobType.RESTORE, created_by=user, data={"preview": preview.id})
    ioc.crash_after = 0
    with pytest.raises(CrashingPut):
        execute_restore(preview, user=user, io=ioc, job=first)
    restore = preview.restore
    second = Job.objects.create(type=JobType.RESTORE, created_by=user, data={"preview": preview.id})
    db = settings.DATABASES["default"]
    with psycopg.connect(
        dbname=db["NAME"],
        user=db["USER"],
        password=db["PASSWORD"] or None,
        host=db["HOST"],
        port=db["PORT"],
        autocommit=True,
    ) as other:
        other.execute("SELECT pg_advisory_lock(%s::int, %s::int)", [claim._LOCK_NAMESPACE, restore.pk])
        run_job(second.id, RestoreRunner.run)
        other.execute("SELECT pg_advisory_unlock(%s::int, %s::int)", [claim._LOCK_NAMESPACE, restore.pk])
    second.refresh_from_db()
    assert second.status == JobStatus.FAILED and f"job #{first.id}" in second.error


@pytest.mark.django_db
def test_a_restore_job_delivered_again_after_the_restore_finished_is_finished_not_failed(ioc, user, undo_snapshots):
    from jobs.models import Job, JobStatus, JobType
    from jobs.runner import run_job
    from snapshots.restore.runners import RestoreRunner

    preview = preview_restore(simple_setup(ioc, user), created_by=user, io=ioc)
    job = Job.objects.create(type=JobType.RESTORE, created_by=user, data={"preview": preview.pk})
    job.start()
    # The first delivery ran the restore to the end, then its worker died before job.finish().
    restore = execute_restore(preview, user=user, io=ioc, job=job)
    job.refresh_from_db()
    assert (job.status, job.result_id) == (JobStatus.RUNNING, restore.pk)

    run_job(job.pk, RestoreRunner.run)

    job.refresh_from_db()
    assert (job.status, job.result_id, job.error) == (JobStatus.SUCCEEDED, restore.pk, "")


@pytest.mark.django_db
def test_a_registry_edit_before_the_undo_snapshot_refuses_the_retry(ioc, user, undo_snapshots):
    preview = preview_restore(simple_setup(ioc, user), created_by=user, io=ioc)
    claimed = Restore.objects.create(
        preview=preview,
        snapshot=preview.snapshot,
        created_by=user,
        options={
            "verify": True,
            "verify_timeout": 1.0,
            "put_timeout": 1.0,
            "connect_timeout": 1.0,
        },
    )  # the first runner claimed it and died before the undo snapshot
    PV.objects.filter(setpoint_address="T:SP0").update(setpoint_address="T:SP0_NEW")

    with pytest.raises(RestoreError, match="edited or deleted.*Nothing was written"):
        execute_restore(preview, user=user, io=ioc)

    claimed.refresh_from_db()
    assert (claimed.status, claimed.undo_snapshot_id, claimed.items.count()) == (RestoreStatus.PARTIAL, None, 0)
    assert ioc.puts == {} and undo_snapshots == []
