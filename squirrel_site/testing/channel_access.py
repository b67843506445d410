"""Channel Access from outside Squirrel: read, write and watch the IOC from separate processes.

What the IOC holds is the one thing a fault test must not learn from Squirrel itself, so every
read and write here runs pyepics in a subprocess of its own with the processes' environment.
`CaWatch` subscribes to setpoints before a restore and records every change with the IOC's
timestamp; `changes()` and `last_processed()` then tell how often each PV was written.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time

CA_TIMEOUT = 60.0  # seconds one read or write subprocess may take
WATCH_READY_TIMEOUT = 45.0  # beyond the watch's own deadline (CA_TIMEOUT / 2)

_JSON_VALUE = "def plain(v):\n    return v.tolist() if hasattr(v, 'tolist') else v\n"

# Prints one JSON line [address, value, timestamp] per monitor event, "ready" once every address
# has shown its current value; runs until terminated, or exits then with --once.
_WATCH = (
    _JSON_VALUE
    + """
import epics, json, sys, threading, time
once = sys.argv[2] == "once"
seen = set()
lock = threading.Lock()
done = False
def show(pvname=None, value=None, timestamp=None, **kw):
    with lock:
        if done:
            return
        print(json.dumps([pvname, plain(value), timestamp]), flush=True)
        seen.add(pvname)
addresses = json.loads(sys.argv[1])
pvs = [epics.PV(a, form="time", auto_monitor=True, callback=show) for a in addresses]
deadline = time.monotonic() + %r
while len(seen) < len(set(addresses)) and time.monotonic() < deadline:
    time.sleep(0.02)
with lock:
    # In --once mode nothing is printed after the verdict: a late event would otherwise follow it.
    done = once
    print(json.dumps("ready" if len(seen) == len(set(addresses)) else "incomplete"), flush=True)
if once:
    sys.exit(0)
while True:
    time.sleep(1)
"""
    % (CA_TIMEOUT / 2)
)


def _run(env: dict, code: str, payload) -> str:
    args = [sys.executable, "-c", code, json.dumps(payload)]
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=CA_TIMEOUT)
    assert result.returncode == 0, result.stderr
    return result.stdout


def caget(env: dict, addresses: list[str]) -> dict:
    """{address: value} read now (None for an address that does not answer within 5 s)."""
    code = _JSON_VALUE + (
        "import epics, json, sys\n"
        "print(json.dumps({a: plain(epics.caget(a, use_monitor=False, timeout=5)) for a in json.loads(sys.argv[1])}))"
    )
    return json.loads(_run(env, code, addresses).strip().splitlines()[-1])


def caput(env: dict, values: dict) -> None:
    """Write {address: value}, each put waiting for completion (fails if one is not accepted)."""
    code = (
        "import epics, json, sys\n"
        "for a, v in json.loads(sys.argv[1]).items():\n"
        "    assert epics.caput(a, v, wait=True, timeout=5) == 1, a\n"
    )
    _run(env, code, values)


def _events(lines: list[str]) -> dict[str, list[tuple]]:
    events: dict[str, list[tuple]] = {}
    for line in lines:
        item = json.loads(line)
        if isinstance(item, list):
            address, value, stamp = item
            events.setdefault(address, []).append((value, stamp))
    return events


def last_processed(env: dict, addresses: list[str]) -> dict[str, tuple]:
    """{address: (value, timestamp of the record's last processing)}, as a new subscriber sees them."""
    result = subprocess.run(
        [sys.executable, "-c", _WATCH, json.dumps(addresses), "once"],
        env=env, capture_output=True, text=True, timeout=CA_TIMEOUT,
    )  # fmt: skip
    lines = result.stdout.splitlines()
    assert result.returncode == 0 and lines and json.loads(lines[-1]) == "ready", result.stdout + result.stderr
    return {address: events[-1] for address, events in _events(lines).items()}


class CaWatch:
    """A subscriber to `addresses` in a subprocess, recording every value the IOC posts.

    The subprocess's output is read by a thread of its own, so a watch that hangs before its first
    line (seen once in CI: no output at all for 300 s) fails within WATCH_READY_TIMEOUT instead of
    blocking the test in readline(); such a watch is killed and started once more, since a client
    that never came up says nothing about Squirrel.
    """

    def __init__(self, env: dict, addresses: list[str], attempts: int = 2):
        self.env, self.addresses = env, addresses
        for attempt in range(1, attempts + 1):
            self._start()
            try:
                self._wait_ready()
                return
            except AssertionError:
                self._kill()
                if attempt == attempts:
                    raise

    def _start(self) -> None:
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(
            [sys.executable, "-c", _WATCH, json.dumps(self.addresses), "watch"],
            env=self.env, stdout=subprocess.PIPE, stderr=self.stderr, text=True,
        )  # fmt: skip
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, args=(self.process.stdout, self._queue), daemon=True)
        self._reader.start()

    @staticmethod
    def _read(stream, into: queue.Queue) -> None:
        for line in stream:
            into.put(line)
        into.put(None)

    def _errors(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read()[-4000:]

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + WATCH_READY_TIMEOUT
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(
                    f"the Channel Access watch printed no verdict within {WATCH_READY_TIMEOUT:g} s: {self._errors()}"
                ) from None
            if line is None:
                raise AssertionError(f"the watch exited: {self._errors()}")
            if json.loads(line) == "incomplete":
                raise AssertionError("the watch did not see every address")
            self.lines.append(line)
            if json.loads(line) == "ready":
                return

    def _kill(self) -> None:
        self.process.kill()
        self.process.wait()
        self._reader.join(5)

    def stop(self) -> dict[str, list[tuple]]:
        """End the subscription; {address: [(value, timestamp), ...]}, the value at the start first."""
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(CA_TIMEOUT)
        finally:
            if self.process.poll() is None:
                self._kill()
        self._reader.join(CA_TIMEOUT)
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.lines.append(line)
        return _events(self.lines)

    def changes(self) -> dict[str, list[tuple]]:
        """Stop, then {address: [(value, timestamp), ...]} of each change after the start (repeated
        values, e.g. an alarm posted with the same value, collapsed)."""
        changes = {}
        for address, events in self.stop().items():
            distinct = [events[0]]
            for value, stamp in events[1:]:
                if value != distinct[-1][0]:
                    distinct.append((value, stamp))
            changes[address] = distinct[1:]
        return changes
