"""Test support for fault tests: private PostgreSQL and Redis, and the real processes on them.

`services` runs a PostgreSQL cluster and a Redis server of the test's own (they may be stopped,
killed and restarted); `processes` runs Squirrel's processes (web, worker, beat, monitor and the
simulated IOC) against them; `fixtures` exposes both to pytest (the root conftest.py loads it).
No test module imports from another: they all use these.
"""

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
