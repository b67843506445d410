"""pytest fixtures for fault tests (the root conftest.py loads this module as a plugin).

`fault_services` (session): a private PostgreSQL with a migrated template database, a private
Redis and the simulated IOC on a CA port of its own. `squirrel` (per test): a fresh copy of the
template database, an empty Redis, the services running again if the previous test stopped them,
and a `Squirrel` to start processes with; their logs are added to the report of a failed test.
`private_redis` (per test): just a Redis server to kill; `systemd_socket`: systemd's notify socket.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import pytest

from squirrel_site.testing.processes import (
    TEMPLATE_DB,
    ManagedProcess,
    Squirrel,
    prepare_template,
    process_env,
    simulated_ioc,
)
from squirrel_site.testing.services import Ports, PrivatePostgres, PrivateRedis
from squirrel_site.testing.workers import port_base

FAULT_IOC_PVS = 200
# Fault tests take loopback ports from here upwards (the first free ones): SQUIRREL_TEST_PORT_BASE,
# a range of its own for each worker of a parallel run.
PORT_BASE = port_base()


@dataclass
class FaultServices:
    """What the session shares: the services, the IOC, the template database and its API token."""

    postgres: PrivatePostgres
    redis: PrivateRedis
    ioc: ManagedProcess
    token: str
    ports: Ports


@pytest.fixture(scope="session")
def fault_services(tmp_path_factory):
    """Private PostgreSQL and Redis, a template database with the demo registry, the simulated IOC."""
    ports = Ports(PORT_BASE)
    postgres = PrivatePostgres(ports.take())
    redis = PrivateRedis(tmp_path_factory.mktemp("redis"), ports.take())
    ioc = None
    try:
        postgres.start()
        redis.start()
        token = prepare_template(postgres, redis, FAULT_IOC_PVS)
        ioc_env = process_env(postgres, redis, TEMPLATE_DB, ports.take())
        ioc = simulated_ioc(tmp_path_factory.mktemp("ioc"), ioc_env, FAULT_IOC_PVS)
        ioc.start()
        ioc.wait_ready()
        yield FaultServices(postgres, redis, ioc, token, ports)
    finally:
        if ioc is not None:
            ioc.stop()
        redis.kill()
        postgres.destroy()


@pytest.fixture
def private_redis(tmp_path):
    """A Redis server of the test's own, which it may kill (and restart empty)."""
    server = PrivateRedis(tmp_path, Ports(PORT_BASE + 50).take())
    server.start()
    yield server
    server.kill()


@pytest.fixture
def squirrel(fault_services, request, tmp_path):
    """A Squirrel on a fresh database and an empty Redis; every process it started is stopped after."""
    services = fault_services
    if not services.postgres.running:
        services.postgres.start()
    services.redis.restart()
    if not services.ioc.alive():
        services.ioc.start()
        services.ioc.wait_ready()
    db_name = f"squirrel_fault_{os.getpid()}"
    services.postgres.create_database(db_name, template=TEMPLATE_DB)
    system = Squirrel(
        tmp_path,
        services.postgres,
        services.redis,
        services.ioc,
        db_name,
        services.ports.take(),
        services.token,
        services.ports,
    )
    request.node.squirrel_system = system
    yield system
    system.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed fault test's report ends with the tail of every process's and service's log."""
    outcome = yield
    report = outcome.get_result()
    system = getattr(item, "squirrel_system", None)
    if system is not None and report.failed:
        report.sections.append(("squirrel logs", system.logs()))


@pytest.fixture
def systemd_socket(tmp_path, monkeypatch):
    """A unix datagram socket standing in for systemd's, named in NOTIFY_SOCKET (see `received`)."""
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(2)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        yield sock


def received(sock: socket.socket, wait: float = 0.2) -> list[str]:
    """Every notification waiting on `sock` (what arrives within `wait` s of the last one)."""
    sock.settimeout(wait)
    messages = []
    try:
        while True:
            messages.append(sock.recv(256).decode())
    except TimeoutError:
        return messages
