"""The simulated Archiver Appliance served by ``manage.py run_sim_archiver`` (demo and tests).

A small HTTP server speaking exactly the two retrieval endpoints :mod:`pvs.archiver` uses, from
samples it records itself off the simulated IOC (and pvAccess server): it subscribes addresses
through :class:`pvs.channels.ChannelSet`, the client the monitor uses (both protocols), and keeps
each address's samples in a ring:

- ``POST /retrieval/data/getDataAtTime?at=ISO&includeProxies=true``, a JSON list of names:
  ``{name: {"secs", "nanos", "val", "severity", "status"}}`` with the last sample at or before
  `at` of each name it has one of; other names are absent, as the appliance answers;
- ``GET /retrieval/data/getData.json?pv=NAME&from=ISO&to=ISO``: ``[{"meta": {"name", "EGU",
  "PREC"}, "data": [...]}]``, the samples between the two times plus the last one before `from`
  (as the appliance does); ``[]`` for a name it does not archive.

Values are written as the appliance writes them: numbers, strings, lists of either, an enum's
index as a number. Structures (pvAccess NTTable...) are not archived, as the appliance does not.

Memory: a sample is a tuple of 4 (time, value, severity, status) in a deque; ~150 bytes for a
scalar. The ring keeps at most `history` samples per address (3,600 by default, an hour of a PV
changing at 1 Hz): 5,000 quiet PVs seeded for an hour at one sample per 10 minutes take ~5 MB;
the ~2% that change at 1 Hz fill their rings (~100 changing PVs × 3,600 × 150 B ≈ 55 MB).

``seed_hours`` fabricates a past: when an address's first value arrives, samples are made up at
``seed_step`` intervals back over that many hours, numbers within ±1% of the first value (other
kinds repeat it), so a time in the last hour has an answer right after the demo starts. A seeded
sample is no record of what the IOC held; the demo says so.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Iterable
from datetime import datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from pvs.archiver import AT_TIME_PATH, DATA_PATH
from squirrel_site import epics_values as ev
from squirrel_site.epics_values import Value

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024 * 1024
DEFAULT_HISTORY = 3600
DEFAULT_SEED_STEP = 600.0
_TIME, _VAL, _SEVERITY, _STATUS = range(4)


class SampleStore:
    """Each address's samples, oldest first, in a ring of `history`; thread-safe."""

    def __init__(
        self,
        history: int = DEFAULT_HISTORY,
        period: float = 0.0,
        seed_hours: float = 0.0,
        seed_step: float = DEFAULT_SEED_STEP,
        seed: int = 0,
    ):
        self.history, self.period = history, period
        self.seed_hours, self.seed_step = seed_hours, seed_step
        self._rng = random.Random(seed)
        self._samples: dict[str, deque] = {}
        self._meta: dict[str, tuple[str, int | None]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._samples)

    def sample_count(self) -> int:
        with self._lock:
            return sum(len(ring) for ring in self._samples.values())

    def set_meta(self, address: str, units: str, precision: int | None) -> None:
        with self._lock:
            self._meta[address] = (units or "", precision)

    def record(self, value: Value) -> None:
        """Keep `value` (a connected channel's update) as a sample. Within `period` seconds of the
        previous sample it replaces it (the appliance's sampling period); a structure is skipped."""
        spec = ev.spec_of(value.kind)
        if value.value is None or spec is None or spec.compare == ev.STRUCT:
            return
        moment = value.timestamp or value.received or time.time()
        sample = (moment, _json_value(value.value), value.severity, value.status)
        with self._lock:
            ring = self._samples.get(value.address)
            if ring is None:
                ring = self._samples[value.address] = deque(maxlen=self.history)
                self._seed(ring, sample)
            if ring and moment < ring[-1][_TIME]:
                return  # older than what is kept: an out-of-order update
            if ring and self.period and moment - ring[-1][_TIME] < self.period and len(ring) > 1:
                ring[-1] = sample
            else:
                ring.append(sample)

    def add(self, address: str, samples: Iterable[tuple]) -> None:
        """Keep ready-made samples (time, JSON value, severity, status), oldest first (benchmarks)."""
        with self._lock:
            ring = self._samples.setdefault(address, deque(maxlen=self.history))
            ring.extend(samples)

    def at(self, names: Iterable[str], moment: float) -> dict[str, dict]:
        """getDataAtTime's answer: the last sample at or before `moment` of each name that has one."""
        answer = {}
        with self._lock:
            for name in names:
                ring = self._samples.get(name)
                if not ring:
                    continue
                index = bisect_right(ring, moment, key=_sample_time)
                if index:
                    answer[name] = _sample_json(ring[index - 1])
        return answer

    def between(self, name: str, start: float, end: float) -> list[dict] | None:
        """getData.json's samples of `name`: those from `start` to `end`, and the last one before
        `start`; None if the name is not archived."""
        with self._lock:
            ring = self._samples.get(name)
            if ring is None:
                return None
            first = max(bisect_right(ring, start, key=_sample_time) - 1, 0)
            last = bisect_right(ring, end, key=_sample_time)
            return [_sample_json(ring[i]) for i in range(first, last)]

    def meta(self, name: str) -> tuple[str, int | None]:
        with self._lock:
            return self._meta.get(name, ("", None))

    def _seed(self, ring: deque, first: tuple) -> None:
        if self.seed_hours <= 0:
            return
        steps = min(int(self.seed_hours * 3600 / self.seed_step), self.history - 1)
        for step in range(steps, 0, -1):
            moment = first[_TIME] - step * self.seed_step + self._rng.uniform(0, self.seed_step / 2)
            ring.append((moment, self._nearby(first[_VAL]), first[_SEVERITY], first[_STATUS]))

    def _nearby(self, val):
        """A made-up earlier value of the same shape: a float within ±1%, anything else as it is."""
        if isinstance(val, float):
            return val * (1 + self._rng.uniform(-0.01, 0.01))
        if isinstance(val, list) and val and all(isinstance(x, float) for x in val):
            factor = 1 + self._rng.uniform(-0.01, 0.01)
            return [x * factor for x in val]
        return val


def _sample_time(sample: tuple) -> float:
    return sample[_TIME]


def _json_value(value):
    """A value as the appliance writes it: numbers and strings, lists of them."""
    if isinstance(value, (list, tuple)) or hasattr(value, "tolist"):
        return list(value.tolist() if hasattr(value, "tolist") else value)
    return value


def _sample_json(sample: tuple) -> dict:
    moment = sample[_TIME]
    secs = int(moment)
    return {
        "secs": secs,
        "nanos": int(round((moment - secs) * 1e9)),
        "val": sample[_VAL],
        "severity": sample[_SEVERITY],
        "status": sample[_STATUS],
    }


def parse_time(text: str) -> float:
    """An ISO 8601 time with its offset (``Z`` for UTC) as Unix seconds; ValueError otherwise."""
    if len(text) > 64 or not text.isprintable():
        raise ValueError("not an ISO 8601 time")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("the time has no UTC offset")
    return moment.timestamp()


class Handler(BaseHTTPRequestHandler):
    """The two endpoints; anything else is 404. Errors are plain text, as the appliance's are."""

    server: ArchiverServer
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        url = urlsplit(self.path)
        if url.path != AT_TIME_PATH:
            return self._error(HTTPStatus.NOT_FOUND, "no such endpoint")
        query = parse_qs(url.query)
        try:
            moment = parse_time(query["at"][0])
        except (KeyError, ValueError) as exc:
            return self._error(HTTPStatus.BAD_REQUEST, f"at: an ISO 8601 time with its offset ({exc})")
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            return self._error(HTTPStatus.LENGTH_REQUIRED, "a body with its length")
        if int(length) > MAX_BODY_BYTES:
            return self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body too large")
        try:
            names = json.loads(self.rfile.read(int(length)))
        except (ValueError, RecursionError):
            names = None
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            return self._error(HTTPStatus.BAD_REQUEST, "the body is a JSON list of PV names")
        self._json(self.server.store.at(names, moment))

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path != DATA_PATH:
            return self._error(HTTPStatus.NOT_FOUND, "no such endpoint")
        query = parse_qs(url.query)
        try:
            name = query["pv"][0]
            start, end = parse_time(query["from"][0]), parse_time(query["to"][0])
        except (KeyError, ValueError) as exc:
            return self._error(HTTPStatus.BAD_REQUEST, f"pv, from and to (ISO 8601 with offsets): {exc}")
        samples = self.server.store.between(name, start, end)
        if samples is None:
            return self._json([])
        units, precision = self.server.store.meta(name)
        meta = {"name": name, "EGU": units, "PREC": str(precision if precision is not None else 0)}
        self._json([{"meta": meta, "data": samples}])

    def log_message(self, format, *args):
        logger.debug("%s %s", self.address_string(), format % args)

    def _json(self, answer) -> None:
        body = json.dumps(answer, separators=(",", ":")).encode()
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: HTTPStatus, message: str) -> None:
        body = f"{status.value} {status.phrase}: {message}\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True


class ArchiverServer(ThreadingHTTPServer):
    """The HTTP server, holding the store its handlers answer from."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], store: SampleStore):
        super().__init__(address, Handler)
        self.store = store


class Recorder:
    """Subscribes addresses through pvs.channels.ChannelSet and records every update in a store,
    on a thread of its own (stopped by :meth:`stop`)."""

    def __init__(self, store: SampleStore, addresses: Iterable[str], channels=None):
        from pvs.channels import ChannelSet

        self.store = store
        self.addresses = list(dict.fromkeys(addresses))
        self.channels = channels or ChannelSet()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sim-archiver-recorder", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        # Subscribed, polled and closed on this one thread: a Channel Access context is a thread's.
        self.channels.add(self.addresses)
        try:
            self._record()
        finally:
            self.channels.close()

    def _record(self) -> None:
        while not self._stop.is_set():
            result = self.channels.poll(0.1)
            for meta in result.metadata:
                self.store.set_meta(meta.address, meta.units, meta.precision)
            for reading in result.readings:
                if reading.connected:
                    self.store.record(reading)
