"""Fixtures of the monitor app's tests: the simulated IOC's registry, a fenced writer, monitor processes."""

import os
import signal
import subprocess
import sys

import pytest
from django.conf import settings
from django.db import connection

from monitor.live import FencedWriter, Lease, Shard
from pvs.importers import import_pvs
from pvs.models import PV
from squirrel_site.testing.values import make_value


@pytest.fixture
def sim_ioc_addresses(sim_ioc, transactional_db):
    """The simulated IOC's PVs in the registry (committed, so monitor subprocesses see them)."""
    report = import_pvs("registry.csv", sim_ioc.registry_csv.read_bytes(), dry_run=False)
    assert report.ok, report.errors[:3]
    return {a for pv in PV.objects.all() for a in pv.addresses}


@pytest.fixture
def writer(redis_db):
    """Writes live values the way the monitor does: under the shard's lease, fenced."""
    lease = Lease(redis_db, Shard(0, 1), "test")
    assert lease.acquire()
    return FencedWriter(redis_db, lease)


@pytest.fixture
def announce(writer):
    """Write values (and metadata) and publish their addresses, exactly as a monitor flush does.

    Values are LiveValues or plain floats (made into connected float values).
    """

    def announce(values: dict, metadata: dict | None = None, extra_addresses=()):
        live_values = {a: v if hasattr(v, "kind") else make_value(a, value=v) for a, v in values.items()}
        assert writer.write(live_values, metadata or {})
        writer.publish_changes([*live_values, *extra_addresses])

    return announce


@pytest.fixture
def headers(client, transactional_db, make_user):
    """WebSocket handshake headers: an Origin the ASGI app accepts and a signed-in viewer's session cookie."""
    client.force_login(make_user("viewer", "op"))
    return [
        (b"origin", b"http://127.0.0.1"),
        (b"host", b"127.0.0.1"),
        (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()),
    ]


@pytest.fixture
def monitor_process():
    """Starts `manage.py monitor_pvs` subprocesses on the test database; all stopped afterwards."""
    processes = []

    def start(*args, **env):
        environment = dict(
            os.environ,
            DJANGO_SETTINGS_MODULE=settings.SETTINGS_MODULE,
            SQUIRREL_DB_NAME=connection.settings_dict["NAME"],
            PYTHONUNBUFFERED="1",
            **env,
        )
        process = subprocess.Popen(
            [sys.executable, "manage.py", "monitor_pvs", *args],
            cwd=settings.BASE_DIR,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
