"""Taking snapshots: cache, direct and hybrid modes, disconnected PVs, atomicity, golden."""

import time

import pytest
from django.db import DataError

from monitor import live
from monitor.live import LiveMeta, Shard
from pvs.models import PV
from snapshots.capture.services import SnapshotError, monitor_is_fresh, take_snapshot
from snapshots.models import Snapshot, SnapshotTag, SnapshotValue
from squirrel_site.epics_values import Value
from squirrel_site.testing.snapshots import ALL_CACHED, FakeReader

pytestmark = pytest.mark.django_db


def values_of(snapshot) -> dict[str, SnapshotValue]:
    return {v.pv_name: v for v in snapshot.values.all()}


def test_cache_mode_uses_cached_values_when_the_monitor_is_fresh(three_pvs, cache, admin_user):
    cache(ALL_CACHED, age=1.0, meta={"T:A_SP": LiveMeta("mA", 2, None, None, None, "", "float", 1, True, True)})
    reader = FakeReader({})

    snapshot = take_snapshot(title="t", created_by=admin_user, mode="cache", reader=reader)

    saved = values_of(snapshot)
    assert reader.calls == []
    assert {name: (v.setpoint_value, v.readback_value, v.source) for name, v in saved.items()} == {
        "T:A_SP": (1.0, 1.1, "cache"),
        "T:B_SP": (2.0, 2.1, "cache"),
        "T:C": (3.0, None, "cache"),
    }
    assert (saved["T:A_SP"].units, saved["T:A_SP"].precision, saved["T:A_SP"].readback_name) == ("mA", 2, "T:A_RB")
    assert 1.0 <= saved["T:C"].age < 5.0
    assert saved["T:A_SP"].pv == three_pvs[0]
    assert (snapshot.pv_count, snapshot.disconnected_count, snapshot.mode) == (3, 0, "cache")


def test_cache_mode_stores_missing_and_disconnected_pvs_without_value(three_pvs, cache, admin_user):
    cache({"T:A_SP": None, "T:A_RB": 1.1, "T:B_SP": 2.0, "T:B_RB": None})

    snapshot = take_snapshot(title="t", created_by=admin_user, mode="cache", reader=FakeReader({}))

    saved = values_of(snapshot)
    assert {
        name: (v.connected, v.setpoint_value, v.readback_value, v.reason, v.source) for name, v in saved.items()
    } == {
        "T:A_SP": (False, None, 1.1, "disconnected", "cache"),
        "T:B_SP": (True, 2.0, None, "", "cache"),
        "T:C": (False, None, None, "no value in cache", "none"),
    }
    assert snapshot.disconnected_count == 2
    # The rows are counted while COPY writes them: the stored counts say the same.
    snapshot.refresh_from_db()
    assert (snapshot.pv_count, snapshot.disconnected_count) == (3, 2)
    assert sorted(row[1] for row in snapshot.registry) == ["T:A_SP", "T:B_SP", "T:C"]


def test_stale_heartbeat_makes_cache_mode_read_directly(three_pvs, cache, admin_user):
    cache(ALL_CACHED, heartbeat_age=30.0)
    reader = FakeReader({"T:A_SP": 10.0, "T:A_RB": 10.5, "T:B_SP": 20.0, "T:B_RB": 20.5, "T:C": 30.0})

    snapshot = take_snapshot(title="t", created_by=admin_user, mode="cache", reader=reader)

    saved = values_of(snapshot)
    assert reader.read_addresses == set(ALL_CACHED)
    assert {name: (v.setpoint_value, v.source) for name, v in saved.items()} == {
        "T:A_SP": (10.0, "direct"),
        "T:B_SP": (20.0, "direct"),
        "T:C": (30.0, "direct"),
    }


def test_no_heartbeat_at_all_counts_as_stale(redis_db):
    assert not monitor_is_fresh()


def test_a_missing_shard_heartbeat_counts_as_stale(redis_db):
    live.write_heartbeat(redis_db, Shard(0, 2), {"synced": True})
    assert not monitor_is_fresh()
    live.write_heartbeat(redis_db, Shard(1, 2), {"synced": True})
    assert monitor_is_fresh()


def test_hybrid_reads_only_stale_disconnected_or_missing_values_directly(three_pvs, cache, admin_user):
    cache({"T:A_SP": 1.0, "T:A_RB": 1.1, "T:B_SP": 2.0, "T:B_RB": None})
    reader = FakeReader({"T:B_SP": 20.0, "T:B_RB": 20.5, "T:C": 30})

    snapshot = take_snapshot(title="t", created_by=admin_user, mode="hybrid", reader=reader)

    saved = values_of(snapshot)
    assert reader.read_addresses == {"T:B_SP", "T:B_RB", "T:C"}
    assert {name: (v.setpoint_value, v.readback_value, v.source) for name, v in saved.items()} == {
        "T:A_SP": (1.0, 1.1, "cache"),
        "T:B_SP": (20.0, 20.5, "direct"),
        "T:C": (30, None, "direct"),
    }
    assert saved["T:C"].value_type == "int"


def test_hybrid_uses_connected_cached_values_however_long_unchanged(three_pvs, cache, admin_user):
    cache(ALL_CACHED, age=3600.0)
    reader = FakeReader({address: 0.5 for address in ALL_CACHED})

    snapshot = take_snapshot(title="t", created_by=admin_user, mode="hybrid", reader=reader)

    assert {v.source for v in snapshot.values.all()} == {"cache"}
    assert all(v.age >= 3600.0 for v in snapshot.values.all())
    assert reader.read_addresses == set()


def test_direct_read_failures_are_stored_disconnected_with_the_reason(three_pvs, redis_db, admin_user):
    reader = FakeReader({"T:A_SP": 1.0, "T:B_SP": "disconnected", "T:B_RB": 2.5})

    snapshot = take_snapshot(title="t", created_by=admin_user, mode="direct", reader=reader)

    saved = values_of(snapshot)
    assert {name: (v.connected, v.setpoint_value, v.readback_value, v.reason) for name, v in saved.items()} == {
        "T:A_SP": (True, 1.0, None, ""),
        "T:B_SP": (False, None, 2.5, "disconnected"),
        "T:C": (False, None, None, "timeout"),
    }
    assert saved["T:C"].age is None
    assert snapshot.disconnected_count == 2


def test_selection_limits_the_snapshot_and_reports_progress(three_pvs, redis_db, admin_user):
    steps = []

    snapshot = take_snapshot(
        title="t",
        created_by=admin_user,
        mode="direct",
        pvs=PV.objects.filter(setpoint_address="T:C"),
        reader=FakeReader({"T:C": 3.0}),
        progress=lambda percent, message: steps.append(percent),
    )

    assert list(values_of(snapshot)) == ["T:C"]
    assert steps[0] == 0 and steps[-1] == 100 and steps == sorted(steps)


def test_empty_selection_is_refused(three_pvs, redis_db, admin_user):
    with pytest.raises(SnapshotError, match="No PVs selected"):
        take_snapshot(title="t", created_by=admin_user, pvs=PV.objects.none(), reader=FakeReader({}))


def test_a_failing_write_leaves_no_snapshot(three_pvs, redis_db, admin_user):
    class NulStringReader(FakeReader):
        def read(self, addresses, timeout):
            results = super().read(addresses, timeout)
            # PostgreSQL text cannot hold NUL: COPY fails on this, the last row.
            results["T:C"].reading = Value("T:C", "string", "a\x00b", 0, 0, time.time(), time.time())
            return results

    reader = NulStringReader({"T:A_SP": 1.0, "T:B_SP": 2.0, "T:C": 3.0})

    with pytest.raises(DataError, match="0x00"):
        take_snapshot(title="t", created_by=admin_user, mode="direct", reader=reader)

    assert not Snapshot.objects.exists()
    assert not SnapshotValue.objects.exists()


def test_golden_tag_is_refused_for_non_admins(three_pvs, redis_db, operator):

    with pytest.raises(SnapshotError, match="Only administrators"):
        take_snapshot(title="t", created_by=operator, tags=["golden"], mode="direct", reader=FakeReader({}))

    assert not Snapshot.objects.exists()


def test_the_admin_role_may_tag_golden(three_pvs, redis_db, admin_role_user):
    snapshot = take_snapshot(
        title="t",
        created_by=admin_role_user,
        tags=[SnapshotTag.objects.get(name="golden")],
        mode="direct",
        reader=FakeReader({}),
    )

    assert list(snapshot.tags.values_list("name", flat=True)) == ["golden"]


def test_unknown_tag_names_are_refused(three_pvs, redis_db, admin_user):
    with pytest.raises(SnapshotError, match="Unknown snapshot tag: nope"):
        take_snapshot(title="t", created_by=admin_user, tags=["nope"], reader=FakeReader({}))


@pytest.mark.ioc
def test_direct_snapshot_of_the_simulated_ioc(sim_ioc, redis_db, admin_user):
    from pvs.importers import import_pvs
    from pvs.sim import CHANGING, ENUM, INT, PAIR, READONLY, STRING, STRING_WAVEFORM, WAVEFORM

    report = import_pvs("registry.csv", sim_ioc.registry_csv.read_bytes(), dry_run=False)
    assert report.ok, report.errors

    snapshot = take_snapshot(title="ioc", created_by=admin_user, mode="direct", read_timeout=5.0)

    saved = values_of(snapshot)
    assert (snapshot.pv_count, snapshot.disconnected_count) == (len(sim_ioc.pvs), 0)
    for pv in sim_ioc.pvs:
        value = saved[pv.setpoint]
        assert (value.source, value.connected, value.timestamp is not None) == ("direct", True, True), pv
        if pv.kind == CHANGING:
            assert value.setpoint_value == pytest.approx(pv.value, abs=2 * pv.noise + 1e-9)
        elif pv.kind == WAVEFORM:
            assert value.setpoint_value == pytest.approx(list(pv.value))
        elif pv.kind == STRING_WAVEFORM:
            assert (value.value_type, value.setpoint_value) == ("string_array", list(pv.value))
        elif pv.kind == ENUM:
            assert value.setpoint_value == pv.value
        elif pv.kind in (INT, STRING):
            assert value.setpoint_value == pv.value
        else:
            assert value.setpoint_value == pytest.approx(pv.value, rel=1e-6), pv
        if pv.kind == PAIR:
            assert value.readback_name == pv.readback
            assert value.readback_value == pytest.approx(pv.value, abs=2 * pv.noise + 1e-9)
        if pv.kind == READONLY:
            assert value.readback_value is None


def test_a_monitor_that_has_not_synced_yet_is_not_fresh(redis_db):
    live.write_heartbeat(redis_db, Shard(0, 1), {"synced": False})
    assert not monitor_is_fresh()
    live.write_heartbeat(redis_db, Shard(0, 1), {"synced": True})
    assert monitor_is_fresh()


def test_a_snapshot_job_redelivered_after_its_snapshot_was_saved_takes_no_second_one(three_pvs, redis_db, admin_user):
    from jobs.models import Job, JobStatus, JobType
    from jobs.runner import run_job
    from snapshots.capture.runners import SnapshotRunner

    job = Job.objects.create(type=JobType.SNAPSHOT, created_by=admin_user, data={"title": "t", "mode": "direct"})
    job.start()
    # The first delivery saved its snapshot (and with it the job's result), then its worker died.
    saved = take_snapshot(title="t", created_by=admin_user, mode="direct", reader=FakeReader({}), job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.result_id) == (JobStatus.RUNNING, saved.pk)

    run_job(job.id, SnapshotRunner.run)  # the redelivered task

    job.refresh_from_db()
    assert (job.status, job.result_id) == (JobStatus.SUCCEEDED, saved.pk)
    assert list(Snapshot.objects.values_list("pk", flat=True)) == [saved.pk]
