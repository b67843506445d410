"""Fixtures of the snapshot tests: users of the viewer and operator roles, snapshots written
straight from Python values, live values in Redis."""

import json
import time

import pytest

from monitor import live
from monitor.live import FencedWriter, Lease, LiveValue, Shard
from pvs.models import PV
from snapshots import restore as restore_service
from snapshots.models import (
    Snapshot,
    SnapshotMode,
    SnapshotValue,
    ValueType,
)
from snapshots.restore import execute_restore
from squirrel_site.testing.restore import FakeIOC, make_preview


@pytest.fixture
def viewer(make_user):
    """A user of the viewer role: may only look."""
    return make_user("viewer", "viewer")


@pytest.fixture
def operator(make_user):
    """A user of the operator role: may take snapshots and restore."""
    return make_user("operator", "operator")


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


@pytest.fixture
def three_pvs():
    """Three PVs: A and B with readbacks, C without."""
    return [
        PV.objects.create(setpoint_address="T:A_SP", readback_address="T:A_RB"),
        PV.objects.create(setpoint_address="T:B_SP", readback_address="T:B_RB"),
        PV.objects.create(setpoint_address="T:C"),
    ]


@pytest.fixture
def cache(redis_db):
    """Write live values and metadata as the monitor's leader would, and its heartbeat."""
    lease = Lease(redis_db, Shard(0, 1), "test")
    assert lease.acquire()
    writer = FencedWriter(redis_db, lease)

    def fill(entries: dict, *, age: float = 0.0, meta: dict | None = None, heartbeat_age: float | None = 0.0):
        now = time.time()
        live_values = {}
        for address, value in entries.items():
            connected = value is not None
            live_values[address] = LiveValue(address, "float", value, 0, 0, now - 100, now - age, connected)
        assert writer.write(live_values, meta or {})
        if heartbeat_age is not None:
            live.write_heartbeat(redis_db, Shard(0, 1), {"synced": True})
            if heartbeat_age:
                beat = live.read_heartbeats(redis_db)[0]
                stale = {**beat, "written_at": now - heartbeat_age}
                redis_db.set(live.heartbeat_key(Shard(0, 1)), json.dumps(stale))

    return fill


@pytest.fixture
def saved(admin_user, live_values):
    """Four PVs saved at 1.0; live: A and B moved, C unchanged, D read-only (moved)."""
    pvs = [
        PV.objects.create(setpoint_address="R:A", device="MAG:1", abs_tolerance=0.01),
        PV.objects.create(setpoint_address="R:B", device="MAG:2", abs_tolerance=0.01),
        PV.objects.create(setpoint_address="R:C", device="RF:1", abs_tolerance=0.01),
        PV.objects.create(setpoint_address="R:D", device="RF:2", read_only=True),
    ]
    snapshot = Snapshot.objects.create(title="Good", created_by=admin_user, mode=SnapshotMode.DIRECT, pv_count=4)
    for pv in pvs:
        SnapshotValue.objects.create(
            snapshot=snapshot,
            pv=pv,
            pv_name=pv.setpoint_address,
            value_type=ValueType.FLOAT,
            setpoint_num=1.0,
            source="direct",
        )
    live_values({"R:A": 2.0, "R:B": 3.0, "R:C": 1.0, "R:D": 5.0})
    return snapshot


@pytest.fixture
def restored(client, operator, saved, redis_db):
    """A confirmed preview of `saved`, executed as the worker would (against a fake IOC)."""
    client.force_login(operator)
    preview = make_preview(client, saved)
    ioc = FakeIOC()
    for address, value in {"R:A": 2.0, "R:B": 3.0, "R:C": 1.0, "R:D": 5.0}.items():
        ioc.add(address, value)
    ioc.denied.add("R:B")
    return execute_restore(preview, user=operator, io=ioc, verify_timeout=0.5)
