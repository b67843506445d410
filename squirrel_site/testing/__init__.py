"""Test support in one place: the fixtures and helpers every test module shares, and `eventually()`.

Pytest plugins (the root conftest.py's pytest_plugins): `parallel` (a pytest-xdist run's private
Redis, one database per worker, and its CPU time; `workers` says which worker a process is),
`fixtures` (the fault tests' private PostgreSQL and Redis from `services` and Squirrel's real
processes from `processes`), `ioc` (the simulated IOC in the registry, Celery worker subprocesses,
independent Channel Access reads and writes), `pva` (the simulated pvAccess server and
independent pvAccess reads and writes), `site` (the whole system for the browser tests),
`snapshots` (snapshots, PVs and live values made from Python values). Helpers: `restore` (a fake IOC
for restore unit tests), `values` and `websocket` (the monitor's live values and the live socket),
`jobs`, `load`, `channel_access` and `pva_client` (a fault test's independent Channel Access and
pvAccess clients). No test module imports from another test module or a
conftest.py (squirrel_site/tests/test_test_support.py).
"""

import signal
import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(predicate: Callable[[], T], timeout: float, interval: float = 0.1, what: str = "") -> T:
    """Call `predicate` until it returns something truthy and return that; fail after `timeout` s.

    Exceptions count as "not yet": the service being waited for may refuse connections meanwhile.
    The last exception (or value) is in the AssertionError.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            result = predicate()
        except Exception as exc:  # noqa: BLE001 - anything may fail while a service comes back
            result, last = None, exc
        else:
            last = result
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"{what or getattr(predicate, '__name__', 'condition')} not true after {timeout:g} s (last: {last!r})"
            )
        time.sleep(interval)


def terminate(process: subprocess.Popen, grace: float = 15.0) -> None:
    """SIGTERM `process` if it still runs, and SIGKILL it if it has not exited within `grace` s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
