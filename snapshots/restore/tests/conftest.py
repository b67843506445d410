"""Fixtures of the restore tests: a fake IOC, the undo snapshots a restore takes, a snapshot whose
PVs moved since, and a restore of it executed as a worker would."""

import pytest

from pvs.models import PV
from snapshots.models import Snapshot, SnapshotMode, SnapshotValue, ValueType
from snapshots.restore import plan
from snapshots.restore.execute import execute_restore
from squirrel_site.testing.restore import FakeIOC, make_preview


@pytest.fixture
def ioc(redis_db):
    return FakeIOC()


@pytest.fixture
def undo_snapshots(monkeypatch):
    """The real take_undo_snapshot (a direct read through the io), recording what it was asked for."""
    taken = []
    real = plan.take_undo_snapshot

    def take(*, restore, pvs, user, io):
        snapshot = real(restore=restore, pvs=pvs, user=user, io=io)
        taken.append((snapshot, sorted(pv.setpoint_address for pv in pvs)))
        return snapshot

    monkeypatch.setattr(plan, "take_undo_snapshot", take)
    return taken


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
