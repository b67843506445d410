"""Fixtures of the capture tests: a viewer named "viewer" (the snapshot list searches by author),
PVs with and without readbacks, and the monitor's cache filled as its leader would fill it."""

import json
import time

import pytest

from monitor import live
from monitor.live import FencedWriter, Lease, Shard
from pvs.models import PV
from squirrel_site.epics_values import Value


@pytest.fixture
def viewer(make_user):
    """A user of the viewer role, named "viewer": may only look."""
    return make_user("viewer", "viewer")


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
            live_values[address] = Value(address, "float", value, 0, 0, now - 100, now - age, connected)
        assert writer.write(live_values, meta or {})
        if heartbeat_age is not None:
            live.write_heartbeat(redis_db, Shard(0, 1), {"synced": True})
            if heartbeat_age:
                beat = live.read_heartbeats(redis_db)[0]
                stale = {**beat, "written_at": now - heartbeat_age}
                redis_db.set(live.heartbeat_key(Shard(0, 1)), json.dumps(stale))

    return fill
