"""Which process of a parallel test run (pytest-xdist) this is, and what it owns: its Redis database
and its range of loopback ports. Read by squirrel_site.settings_test, so no pytest here; the plugin
that starts the workers' Redis is squirrel_site.testing.parallel."""

import os
import socket

WORKERS_REDIS = "SQUIRREL_TEST_WORKERS_REDIS_URL"
PORTS_PER_WORKER = 200
DEFAULT_PORT_BASE = 18300


def worker_number() -> int | None:
    """This process's xdist worker number (gw0 is 0), or None outside a parallel run. Processes a
    worker starts inherit it (PYTEST_XDIST_WORKER is in their environment)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    return int(worker.removeprefix("gw")) if worker else None


def worker_redis_url() -> str | None:
    """The Redis database of this worker on the run's private server; None outside a parallel run.
    A worker without the server (this plugin not loaded) stops: it would flush its neighbours' keys."""
    number = worker_number()
    if number is None:
        return None
    server = os.environ.get(WORKERS_REDIS)
    if not server:
        raise RuntimeError(f"xdist worker without {WORKERS_REDIS}: load squirrel_site.testing.parallel")
    return f"{server}/{number}"


def port_base() -> int:
    """Where this process's tests take loopback ports from: SQUIRREL_TEST_PORT_BASE, moved up by
    PORTS_PER_WORKER for each worker before this one."""
    base = int(os.environ.get("SQUIRREL_TEST_PORT_BASE", str(DEFAULT_PORT_BASE)))
    return base + PORTS_PER_WORKER * (worker_number() or 0)


def free_port() -> int:
    """A loopback TCP port nothing listened on a moment ago (the kernel's choice)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
