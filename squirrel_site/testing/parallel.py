"""Running the tests in parallel with pytest-xdist (`.ci/fast` runs `-n 2`) without workers meeting.

A pytest plugin (the root conftest.py's pytest_plugins) and what the test settings read:

- PostgreSQL: pytest-django gives each worker a test database of its own (`test_<name>_gw0`, ...).
- Redis: tests FLUSHDB their Redis database, so workers must not share one. The controller (the
  process that starts the workers) starts a private redis-server without persistence for the run
  and names it in SQUIRREL_TEST_WORKERS_REDIS_URL; each worker uses its own database number on it
  (`workers.worker_redis_url`, read by squirrel_site.settings_test), as do the processes a test starts.
- Loopback ports: `workers.port_base()` moves SQUIRREL_TEST_PORT_BASE by PORTS_PER_WORKER per worker.

Tests that use the simulated IOC share its Channel Access port: `ioc`, `worker`, `browser`, `fault`
and `load` tests run in one process (.ci/run runs them after the parallel part).
"""

import os
import tempfile
from pathlib import Path

import pytest

from squirrel_site.testing.services import PrivateRedis
from squirrel_site.testing.workers import WORKERS_REDIS, free_port

_SERVER = pytest.StashKey()


def _starts_workers(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput") and config.getoption("dist", "no") != "no"


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """In the controller of a parallel run: start the workers' Redis before the workers start
    (xdist starts them at session start); they inherit its URL from the environment."""
    if not _starts_workers(config):
        return
    workers = len(config.getoption("tx") or [])
    server = PrivateRedis(Path(tempfile.mkdtemp(prefix="squirrel-workers-redis-")), free_port())
    server.start(databases=max(16, workers))
    os.environ[WORKERS_REDIS] = server.url.rsplit("/", 1)[0]
    config.stash[_SERVER] = server


def pytest_unconfigure(config: pytest.Config) -> None:
    server = config.stash.get(_SERVER, None)
    if server is not None:
        server.destroy()
        os.environ.pop(WORKERS_REDIS, None)
