"""The Archiver Appliance client: the only module that speaks HTTP to an archiver.

Two documented endpoints of the appliance's retrieval API, nothing else:

- values at a time: ``POST {url}/retrieval/data/getDataAtTime?at=<ISO 8601>&includeProxies=true``,
  a JSON list of PV names as the body; the answer is a JSON object mapping each name the archiver
  has a sample of (the last one at or before `at`) to ``{"secs", "nanos", "val", "severity",
  "status"}``; names it lacks are absent (:func:`values_at`);
- a PV's history: ``GET {url}/retrieval/data/getData.json?pv=NAME&from=ISO&to=ISO``, answered by
  ``[{"meta": {"name", "EGU", "PREC", ...}, "data": [{"secs", "nanos", "val", ...}, ...]}]``
  (:func:`history`).

Several archivers may be configured (``SQUIRREL_ARCHIVER_URL``, settings.ARCHIVERS): each is
asked for what the ones before it lacked. Names are sent in batches of settings.ARCHIVER_BATCH,
settings.ARCHIVER_THREADS requests in flight at once, a fresh HTTP connection per request (one per
thread at a time). pvAccess addresses (``pva://NAME``) are sent as they are: the appliance accepts
the prefix. An archived value becomes a :class:`squirrel_site.epics_values.Value` through
:func:`squirrel_site.epics_values.kind_of_archived` (the JSON carries no type: an enum's index is
a number, told from an integer by the channel's kind when the caller knows it).

Errors: a PV an archiver answered about but has no sample of is :class:`NotArchived` with the
reason; when no archiver answered about a PV at all (each unreachable, timed out, or answering
what is not the documented JSON), :class:`ArchiverError` says which and why. The HTTP layer is
:func:`_request` alone: unit tests replace it with canned answers, integration tests run
``manage.py run_sim_archiver``.
"""

from __future__ import annotations

import http.client
import json
import math
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode, urlsplit

from django.conf import settings

from squirrel_site import epics_values as ev
from squirrel_site.epics_values import Value

AT_TIME_PATH = "/retrieval/data/getDataAtTime"
DATA_PATH = "/retrieval/data/getData.json"
# The most an answer may be; beyond it the archiver counts as answering garbage (a 2,000-name
# batch of scalars is ~200 kB).
MAX_ANSWER_BYTES = 256 * 1024 * 1024
_ANSWER_CHUNK = 1 << 20


class ArchiverError(Exception):
    """No archiver could answer (each unreachable, timed out or answering garbage), or none is
    configured; the message names each archiver and why."""


@dataclass(frozen=True)
class Archiver:
    """One configured archiver: its name (as provenance on values) and base URL."""

    name: str
    url: str


@dataclass(frozen=True)
class Archived:
    """A PV's archived sample at a time: the value (its timestamp the sample's), which archiver
    had it, and its age at that time (seconds between the sample and the time asked for)."""

    value: Value
    archiver: str
    age: float


@dataclass(frozen=True)
class NotArchived:
    """A PV no archiver has a sample of at the time asked for, and why."""

    address: str
    reason: str


@dataclass(frozen=True)
class History:
    """A PV's archived samples between two times, from one archiver, with its units and precision."""

    address: str
    archiver: str
    samples: list[Value]
    units: str
    precision: int | None


class _Unanswered(Exception):
    """One request that got no usable answer: unreachable, timed out, an HTTP error or garbage."""


def archivers() -> list[Archiver]:
    """The configured archivers, in the order they are asked; [] when none is configured."""
    return [Archiver(name, url) for name, url in settings.ARCHIVERS]


def iso(moment: datetime) -> str:
    """`moment` as the appliance takes it: ISO 8601 to the millisecond, with its UTC offset."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("an archiver time needs its time zone (an aware datetime)")
    return moment.isoformat(timespec="milliseconds")


def values_at(
    addresses: Iterable[str],
    at: datetime,
    *,
    timeout: float = 30.0,
    kinds: Mapping[str, str] | None = None,
) -> dict[str, Archived | NotArchived]:
    """The archived value of each address at `at` (an aware datetime): the last sample at or
    before it, from the first archiver that has one; every address given is a key.

    `kinds` (optional) maps an address to its channel's kind (e.g. the monitor's metadata), which
    tells an enum's index from an integer. `timeout` bounds the whole call (each request gets
    what is left, at least a second). Raises :class:`ArchiverError` when no archiver is configured
    or, for some address, none answered at all.
    """
    at_text = iso(at)
    at_seconds = at.timestamp()
    configured = archivers()
    if not configured:
        raise ArchiverError("No archiver is configured: set SQUIRREL_ARCHIVER_URL.")
    deadline = time.monotonic() + timeout
    kinds = kinds or {}
    unique = list(dict.fromkeys(addresses))
    pending = list(unique)
    results: dict[str, Archived | NotArchived] = {}
    asked: dict[str, list[str]] = {}  # address -> archivers that answered without a sample
    failures: dict[str, str] = {}  # archiver -> why it did not answer (its first failure)
    unanswered: set[str] = set()  # addresses some archiver could not be asked about
    for archiver in configured:
        if not pending:
            break
        batches = [pending[i : i + settings.ARCHIVER_BATCH] for i in range(0, len(pending), settings.ARCHIVER_BATCH)]
        asking = [_pool().submit(_ask_at, archiver, batch, at_text, deadline) for batch in batches]
        answers = [future.result() for future in asking]
        still = []
        for batch, (answer, failure) in zip(batches, answers, strict=True):
            if failure is not None:
                failures.setdefault(archiver.name, failure)
                unanswered.update(batch)
                still += batch
                continue
            for address in batch:
                sample = answer.get(address)
                if sample is None:
                    asked.setdefault(address, []).append(archiver.name)
                    still.append(address)
                    continue
                results[address] = _archived(address, sample, archiver.name, at_seconds, at_text, kinds.get(address))
        pending = still
    silent = [address for address in pending if address not in asked]
    if silent:
        raise ArchiverError(_no_answer(failures, len(silent)))
    for address in pending:
        reason = f"not archived by any of: {', '.join(asked[address])} (or no sample at or before {at_text})"
        if address in unanswered:
            reason += "; " + "; ".join(f"{name} did not answer: {why}" for name, why in failures.items())
        results[address] = NotArchived(address, reason[:200])
    return {address: results[address] for address in unique}


def history(address: str, start: datetime, end: datetime, *, timeout: float = 10.0, kind: str | None = None) -> History:
    """The archived samples of `address` between `start` and `end` (aware datetimes), from the
    first archiver that has any (the appliance adds the last sample before `start`). `kind` as in
    :func:`values_at`. Raises LookupError (the reason) when no archiver has a sample of it, and
    :class:`ArchiverError` when none answered."""
    configured = archivers()
    if not configured:
        raise ArchiverError("No archiver is configured: set SQUIRREL_ARCHIVER_URL.")
    query = urlencode({"pv": address, "from": iso(start), "to": iso(end)})
    deadline = time.monotonic() + timeout
    failures: dict[str, str] = {}
    asked = []
    for archiver in configured:
        try:
            answer = _json(_request("GET", f"{archiver.url}{DATA_PATH}?{query}", None, _left(deadline)))
        except _Unanswered as exc:
            failures[archiver.name] = str(exc)
            continue
        found = _history_of(address, answer, archiver.name, kind)
        if found is None:
            failures[archiver.name] = "its answer is not the documented getData.json list"
            continue
        if found.samples:
            return found
        asked.append(archiver.name)
    if not asked:
        raise ArchiverError(_no_answer(failures, 1))
    raise LookupError(f"not archived by any of: {', '.join(asked)} (or no sample between {iso(start)} and {iso(end)})")


# The HTTP layer.


def _request(method: str, url: str, body: bytes | None, timeout: float) -> bytes:
    """One HTTP request on a connection of its own; the answer's body. Raises :class:`_Unanswered`
    (saying why) for no connection, a timeout, a status other than 200 or an oversized answer."""
    parts = urlsplit(url)
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    connection = connection_class(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        chunks, size = [], 0
        while chunk := response.read(_ANSWER_CHUNK):
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                raise _Unanswered(f"answer larger than {MAX_ANSWER_BYTES // (1024 * 1024)} MB")
            chunks.append(chunk)
        if response.status != 200:
            raise _Unanswered(f"HTTP {response.status} {response.reason}".strip())
        return b"".join(chunks)
    except TimeoutError:
        raise _Unanswered(f"no answer within {timeout:.1f} s") from None
    except (OSError, http.client.HTTPException) as exc:
        raise _Unanswered(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from None
    finally:
        connection.close()


_pool_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _pool_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(settings.ARCHIVER_THREADS, thread_name_prefix="archiver")
        return _executor


def _left(deadline: float) -> float:
    return max(deadline - time.monotonic(), 1.0)


def _json(raw: bytes):
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise _Unanswered("its answer is not JSON") from None


def _ask_at(archiver: Archiver, batch: list[str], at_text: str, deadline: float) -> tuple[dict | None, str | None]:
    """(answer, None) or (None, why) for one getDataAtTime request."""
    query = urlencode({"at": at_text, "includeProxies": "true"})
    try:
        answer = _json(
            _request("POST", f"{archiver.url}{AT_TIME_PATH}?{query}", json.dumps(batch).encode(), _left(deadline))
        )
    except _Unanswered as exc:
        return None, str(exc)
    if not isinstance(answer, dict):
        return None, "its answer is not the documented getDataAtTime object"
    return answer, None


def _no_answer(failures: dict[str, str], count: int) -> str:
    said = "; ".join(f"{name}: {why}" for name, why in failures.items())
    return f"No archiver answered for {count} PV{'s' if count != 1 else ''} ({said})."


def _sample(address: str, sample, kind_hint: str | None) -> Value | str:
    """An archived sample as a Value, or why it cannot be read."""
    if not isinstance(sample, dict):
        return "the archiver's sample is not an object"
    secs, nanos = sample.get("secs"), sample.get("nanos", 0)
    if not _is_number(secs) or not _is_number(nanos):
        return "the archiver's sample has no time"
    val = sample.get("val")
    kind = ev.kind_of_archived(val, kind_hint)
    if kind is None:
        return f"the archiver's value is of no kind Squirrel reads ({type(val).__name__})"
    status, severity = sample.get("status", 0), sample.get("severity", 0)
    timestamp = float(secs) + float(nanos) / 1e9
    return Value(
        address=address,
        kind=kind,
        value=ev.archived_value(val, kind),
        status=int(status) if _is_number(status) else 0,
        severity=int(severity) if _is_number(severity) else 0,
        timestamp=timestamp,
        received=timestamp,
    )


def _archived(address, sample, archiver: str, at_seconds: float, at_text: str, kind_hint) -> Archived | NotArchived:
    value = _sample(address, sample, kind_hint)
    if isinstance(value, str):
        return NotArchived(address, f"{archiver}: {value}")
    age = at_seconds - value.timestamp
    if age < -0.001:
        return NotArchived(address, f"no sample at or before {at_text} ({archiver} answered a later one)")
    return Archived(value, archiver, max(age, 0.0))


def _history_of(address: str, answer, archiver: str, kind_hint) -> History | None:
    """The History in a getData.json answer; None if the answer is not of its documented shape."""
    if not isinstance(answer, list):
        return None
    if not answer:
        return History(address, archiver, [], "", None)
    first = answer[0]
    if not isinstance(first, dict) or not isinstance(first.get("data", []), list):
        return None
    meta = first.get("meta") if isinstance(first.get("meta"), dict) else {}
    read = (_sample(address, s, kind_hint) for s in first.get("data", []))
    samples = [value for value in read if isinstance(value, Value)]
    units = meta.get("EGU") if isinstance(meta.get("EGU"), str) else ""
    try:
        precision = int(float(meta["PREC"]))
    except (KeyError, TypeError, ValueError, OverflowError):
        precision = None
    return History(address, archiver, samples, units[:40], precision)


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
