"""Fixtures of the snapshot page tests: users with and without permissions, live values in Redis."""

import time

import pytest
from django.contrib.auth.models import Permission

from monitor import live
from monitor.live import FencedWriter, Lease, LiveValue, Shard


@pytest.fixture
def viewer(django_user_model):
    """A user who may only look."""
    return django_user_model.objects.create_user("viewer", password="pw")


@pytest.fixture
def operator(django_user_model):
    """A user who may take snapshots and restore."""
    user = django_user_model.objects.create_user("operator", password="pw")
    user.user_permissions.add(*Permission.objects.filter(codename__in=["add_snapshot", "add_restore"]))
    return user


@pytest.fixture
def live_values(redis_db):
    """Write live values as the monitor's leader would, with a fresh heartbeat.

    Call with {address: value}, or {address: (kind, value)}; None is a disconnected channel.
    """
    lease = Lease(redis_db, Shard(0, 1), "test")
    assert lease.acquire()
    writer = FencedWriter(redis_db, lease)

    def write(entries: dict):
        now = time.time()
        values = {}
        for address, entry in entries.items():
            kind, value = entry if isinstance(entry, tuple) else ("float", entry)
            values[address] = LiveValue(address, kind, value, 0, 0, now, now, value is not None)
        assert writer.write(values)
        live.write_heartbeat(redis_db, Shard(0, 1), {"synced": True})

    return write
