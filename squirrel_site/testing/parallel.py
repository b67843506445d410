"""Running the tests in parallel with pytest-xdist (`.ci/fast` runs `-n 2`) without workers meeting.

A pytest plugin (the root conftest.py's pytest_plugins) and what the test settings read:

- PostgreSQL: pytest-django gives each worker a test database of its own (`test_<name>_gw0`, ...).
- Redis: tests FLUSHDB their Redis database, so workers must not share one. The controller (the
  process that starts the workers) starts a private redis-server without persistence for the run
  and names it in SQUIRREL_TEST_WORKERS_REDIS_URL; each worker uses its own database number on it
  (`workers.worker_redis_url`, read by squirrel_site.settings_test), as do the processes a test starts.
- Loopback ports: `workers.port_base()` moves SQUIRREL_TEST_PORT_BASE by PORTS_PER_WORKER per worker.

The terminal summary ends with the CPU time the run took (the workers' and the controller's, with
the processes they started), which a shared machine's load does not change as it does the wall time.

Tests that use the simulated IOC share its Channel Access port: `ioc`, `worker`, `browser`, `fault`
and `load` tests run in one process (.ci/run runs them after the parallel part).
"""

import os
import resource
import tempfile
from pathlib import Path

import pytest

from squirrel_site.testing.services import PrivateRedis
from squirrel_site.testing.workers import WORKERS_REDIS, free_port

_SERVER = pytest.StashKey()
_WORKERS_CPU = pytest.StashKey()


def _cpu_seconds() -> float:
    """User and system CPU time of this process and of the processes it started and waited for
    (a worker's: the test processes it started)."""
    return sum(
        usage.ru_utime + usage.ru_stime
        for usage in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    )


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


def pytest_sessionfinish(session: pytest.Session) -> None:
    """In a worker: send the controller its CPU time."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["squirrel_cpu_seconds"] = _cpu_seconds()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """In the controller: add up the CPU time each worker sent when it finished."""
    seconds = getattr(node, "workeroutput", {}).get("squirrel_cpu_seconds", 0.0)
    stash = node.config.stash
    stash[_WORKERS_CPU] = stash.get(_WORKERS_CPU, 0.0) + seconds


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    workers = config.stash.get(_WORKERS_CPU, None)
    if workers is None:
        return
    # The workers that exited are the controller's reaped children by now: count them once.
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    controller = own.ru_utime + own.ru_stime
    total = controller + max(workers, children.ru_utime + children.ru_stime)
    terminalreporter.write_line(
        f"CPU time: {total:.0f} s ({workers:.0f} s in the workers and what they started, {controller:.0f} s in the"
        " controller; PostgreSQL's and Redis's not counted)"
    )
