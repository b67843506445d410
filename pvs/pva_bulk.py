"""pvAccess for many channels at once: the only module that imports p4p's client.

The pvAccess counterpart of :mod:`pvs.epics_io` over :mod:`pvs.epics_bulk` (libca): one pool of
client contexts per process (:func:`client_contexts`, ``SQUIRREL_PVA_CONTEXTS`` of them),
batched reads and puts with completion (:class:`PvaService`, :func:`pva_service`) and a set of
subscriptions drained in batches (:class:`ChannelSet`). It returns the same results as the
Channel Access layer (``Value``, ``Metadata``, ``PollResult``, ``ReadResult``, ``PutResult``), so
callers need not care which protocol an address speaks.

What a normative type reads as (:func:`decode`), through :mod:`squirrel_site.epics_values`:

- NTScalar / NTScalarArray: the kind of the value field (``kind_of_pva``: double → float,
  integers and booleans → int (a boolean as 0 or 1), string → string; their arrays); display
  units, precision and limits go to the channel's :class:`Metadata`;
- NTEnum: an ``enum``, the value its index, the choices the metadata's ``enum_labels``;
- any other structure (NTTable, ...): a ``structure``, its typed JSON text (type id, type,
  fields; ``structure_text``), read and compared, never written;
- alarm: ``status`` and ``severity`` are the pvAccess alarm's (its status codes are pvAccess'
  NO_STATUS, DEVICE, DRIVER, ..., not Channel Access' alarm conditions); ``timestamp`` is the
  timeStamp (pvAccess counts from 1970, as Unix does).

Why p4p's lower level: p4p's threaded ``Context.monitor`` runs a Python callback per update on
a worker pool and unwraps every value into a Python object, and loses the first update of a
subscription whose value arrives before ``monitor()`` returns (benchmarks/bench_pva.py counts
those). Here each subscription's handler only appends its index to one queue (a C-level call),
and :meth:`ChannelSet.poll` pops and converts every pending update in the caller's thread,
reading the raw p4p ``Value`` (no unwrapping); the channels are spread over a few contexts
(:data:`CONTEXTS`), as pvxs' search costs one context the square of its channels. Where the time
still goes is docs/benchmarks.md, "pvAccess".
"""

from __future__ import annotations

import atexit
import os
import threading
import time
import zlib
from collections import deque
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial

from p4p import _gw, _p4p
from p4p.client.raw import Cancelled, Context, Disconnected, Finished, RemoteError

from pvs.epics_io import (  # the results both protocols return
    DISCONNECTED,
    TIMEOUT,
    Metadata,
    PollResult,
    PutRequest,
    PutResult,
    ReadResult,
)
from pvs.protocols import name_of
from pvs.pva_values import NOT_WRITABLE, _builder, decode, decode_next  # noqa: F401 (NOT_WRITABLE: the put error)
from squirrel_site.epics_env import apply_loopback_defaults
from squirrel_site.epics_values import Value

# A structure's typed JSON leaves out what the value's own fields hold.
_IDLE_POLL = 0.005  # s between looks at an empty queue of updates

_REQUEST = Context.makeRequest("field()")
_PUT_WAIT = Context.makeRequest("field()record[block=true]")
_PUT_NO_WAIT = Context.makeRequest("field()record[block=false]")


class PvAccessError(RuntimeError):
    """p4p refused an operation (bad configuration, a closed context)."""


# One client pool per process: a few contexts, each address always on the same one.


# pvxs (1.5, as pvxslibs ships it) walks its search lists once per channel it searches (the
# wheels' libstdc++ ABI counts a std::list by walking it), so one context's CPU grows with the
# square of its channels: 50,000 channels cost its network thread 8-29 s, four contexts of
# 12,500 cost theirs 4.4 s in all (docs/benchmarks.md, "pvAccess").
def _context_count() -> int:
    text = os.environ.get("SQUIRREL_PVA_CONTEXTS", "").strip()
    if not text:
        return DEFAULT_CONTEXTS
    try:
        count = int(text)
    except ValueError:
        raise PvAccessError(f"SQUIRREL_PVA_CONTEXTS must be a whole number, not {text!r}") from None
    if not 1 <= count <= 256:
        raise PvAccessError(f"SQUIRREL_PVA_CONTEXTS must be between 1 and 256, not {count}")
    return count


DEFAULT_CONTEXTS = 4
CONTEXTS = _context_count()

_contexts: list[Context] = []
_context_lock = threading.Lock()


def make_context(conf: dict[str, str] | None = None) -> Context:
    """A new p4p client context, configured from the environment with the loopback defaults
    (squirrel_site.epics_env), `conf` overriding it. The process uses one pool
    (:func:`client_contexts`); a test makes its own for its own server."""
    apply_loopback_defaults()
    # raw: no work-queue threads and no unwrapping; useenv: EPICS_PVA_* from the environment.
    return Context("pva", conf=conf, useenv=True, nt=False)


def make_contexts(conf: dict[str, str] | None = None, count: int = CONTEXTS) -> list[Context]:
    """`count` new contexts (:func:`make_context`): a pool for :class:`ChannelSet` and
    :class:`PvaService`."""
    return [make_context(conf) for _ in range(count)]


def client_contexts() -> list[Context]:
    """The process's pool of p4p client contexts (created on first use, thread-safe)."""
    with _context_lock:
        if not _contexts:
            _contexts.extend(make_contexts())
        return _contexts


def context_of(address: str, contexts: Sequence[Context]) -> Context:
    """The context of `contexts` that `address` always uses (its channel is cached there)."""
    return contexts[zlib.crc32(address.encode()) % len(contexts)]


@atexit.register
def close_client_contexts() -> None:
    """Close the process's pool (every subscription and operation on it ends)."""
    if _service is not None:
        _service.close(cancel=False)
    _closer.close_now()
    with _context_lock:
        for context in _contexts:
            context.close()
        _contexts.clear()


def _error_text(error: BaseException) -> str:
    if isinstance(error, Disconnected):
        return DISCONNECTED
    if isinstance(error, RemoteError):
        return f"failed: {error}"
    return f"failed: {error}" if str(error) else f"failed: {type(error).__name__}"


# Direct reads and puts.
#
# Both run every operation at once and gather the answers in the calling thread. A read is a
# subscription closed after its first update (the whole value, as a get answers): p4p then calls
# only a C-level handler per channel (it queues the channel's index) and the value is popped and
# converted here, where a get calls a Python handler chain per answer on the context's network
# thread (a third of the CPU a get of 50,000 channels took: docs/benchmarks.md, "pvAccess"). A put
# needs its Python builder there (the value is filled in once the server has said the channel's
# type); its completion handler is a single Python call that queues the outcome.


def _finished(ready: deque, index: int, code: int, message: str, value) -> None:
    """p4p's completion handler of operation `index` (any thread): queue its outcome."""
    ready.append((index, code, message, value))


# p4p's completion codes (p4p.client.raw.unwrapHandler): an error the server sent, the
# operation cancelled (closed), the builder raised, success.
_REMOTE_ERROR, _CANCELLED, _BUILDER_ERROR = 0, 1, 2


def _run_all(started: list, start, count: int, ready: deque, take, timeout: float, window: int | None = None) -> None:
    """Start `count` operations (``start(index)`` each, appended to `started`), at most `window`
    unanswered at a time (None: all at once), and call ``take(item, received)`` for every item
    `ready` receives, until `take` has returned True `count` times or no answer has come for
    `timeout` seconds (so a large batch is not cut short by its size, while a dead server still
    costs one timeout); then leave the operations to the closer. Operations the window held back
    until then are never started (``len(started) < count``)."""
    window = count if window is None else max(1, window)
    deadline = time.monotonic() + timeout
    answered = 0
    with _closer.busy():
        try:
            while answered < count:
                while len(started) < count and len(started) - answered < window:
                    started.append(start(len(started)))
                if not ready:
                    if time.monotonic() >= deadline:
                        return
                    time.sleep(_IDLE_POLL)
                    continue
                received, before = time.time(), answered
                for _ in range(len(ready)):
                    if take(ready.popleft(), received):
                        answered += 1
                if answered != before:
                    deadline = time.monotonic() + timeout
        finally:
            _closer.close_later(started)


# A put never started: the ones before it held the window until the timeout.
NOT_SENT = "not sent: the puts before it did not complete in time"


def _missing(reached: bool, sent: bool) -> str:
    """Why an operation has no answer. pvAccess tells a client nothing of a channel until its
    server answers the search, so an operation that never reached the server reads as
    ``disconnected``, as a Channel Access channel that never connected does; a put that reached
    it (its builder ran: the channel connected and the value went out) but did not complete is a
    ``timeout``: it may have been applied."""
    if not sent:
        return NOT_SENT
    return TIMEOUT if reached else DISCONNECTED


class _Closer:
    """Closes finished subscriptions and operations in a thread of its own, while no read or put
    is under way.

    p4p's ``close()`` cancels the operation synchronously on its context's network thread: as
    much CPU and wall time again as starting it (1.5 s for 20,000 subscriptions on the 2-core
    VM: docs/benchmarks.md, "pvAccess"), which a read or put need not wait for once every answer
    is in, and which, beside the next read, slows that one down as much again. So it waits for a
    moment with none under way (:meth:`busy`), unless :data:`_CLOSE_BACKLOG` items are waiting.
    The channels stay cached on their contexts either way."""

    def __init__(self):
        self._pending: deque = deque()
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closing = 0
        self._active = 0

    @contextmanager
    def busy(self):
        """Around a read or put: no closing meanwhile (short of the backlog)."""
        with self._lock:
            self._active += 1
            self._idle.clear()
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1
                if not self._active:
                    self._idle.set()

    def close_later(self, items: list) -> None:
        self._pending.extend(items)
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="pva-closer", daemon=True)
                self._thread.start()
        self._wake.set()

    def close_now(self, limit: int | None = None) -> None:
        """Close what is pending (at most `limit` items), in the calling thread."""
        with self._lock:
            self._closing += 1
        try:
            count = 0
            while self._pending and (limit is None or count < limit):
                try:
                    item = self._pending.popleft()
                except IndexError:
                    return
                item.close()
                count += 1
        finally:
            with self._lock:
                self._closing -= 1

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` s until nothing is pending or being closed; whether it is so."""
        deadline = time.monotonic() + timeout
        while self._pending or self._closing:
            if time.monotonic() >= deadline:
                return False
            time.sleep(_IDLE_POLL)
        return True

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            while self._pending:
                if len(self._pending) < _CLOSE_BACKLOG:
                    self._idle.wait()
                self.close_now(_CLOSE_CHUNK)


_CLOSE_CHUNK = 500  # items closed between two looks for a read or put under way
_CLOSE_BACKLOG = 200_000  # items waiting to be closed beyond which closing waits for nothing
_closer = _Closer()


def _env_number(name: str, default: float, low: float, high: float) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        number = float(text)
    except ValueError:
        raise PvAccessError(f"{name} must be a number, not {text!r}") from None
    if not low <= number <= high:
        raise PvAccessError(f"{name} must be between {low:g} and {high:g}, not {number:g}")
    return number


# How long a read's subscription stays open after the last read or connect that used it, and
# how many each context keeps (beyond that a read's subscriptions close after their first value,
# as they all did before): SQUIRREL_PVA_KEEP_SECONDS (0: keep none), SQUIRREL_PVA_KEEP_PER_CONTEXT.
KEEP_SECONDS = _env_number("SQUIRREL_PVA_KEEP_SECONDS", 300.0, 0.0, 86_400.0)
KEEP_PER_CONTEXT = int(_env_number("SQUIRREL_PVA_KEEP_PER_CONTEXT", 50_000, 0, 1_000_000))


class _Kept:
    """A read's subscription to one address, open between reads: its latest update."""

    __slots__ = ("address", "context", "index", "monitor", "raw", "received", "decoded", "error", "used", "kept")

    def __init__(self, address: str, context: int, index: int, kept: bool):
        self.address, self.context, self.index, self.kept = address, context, index, kept
        self.monitor = None
        self.raw = None  # the latest update (a p4p Value) while connected, else None
        self.received = 0.0
        self.decoded: tuple[Value, Metadata] | None = None  # raw, converted (once per update)
        self.error: str | None = None  # the failure the server sent instead of a value
        self.used = time.monotonic()


class PvaService:
    """Direct reads and puts on the process's client pool (or on `contexts`), from any thread.

    A read subscribes to each address and keeps the subscription open (at most
    `keep_per_context` per context) until no read or connect has used it for `keep_seconds`: a
    subscription's latest update is the address's current value for as long as it stays
    connected (the server sends every change), so a later read of it answers at once, with no
    new operation on the network (docs/pvaccess.md, "Reads"). A put is always an operation of
    its own, with completion."""

    def __init__(
        self,
        contexts: Sequence[Context] | None = None,
        keep_seconds: float | None = None,
        keep_per_context: int | None = None,
    ):
        self._contexts = contexts
        self._metadata: dict[str, Metadata] = {}
        self.keep_seconds = KEEP_SECONDS if keep_seconds is None else keep_seconds
        self.keep_per_context = KEEP_PER_CONTEXT if keep_per_context is None else keep_per_context
        self._lock = threading.Lock()
        self._subscriptions: dict[str, _Kept] = {}  # kept ones, by address as read
        self._by_index: dict[int, _Kept] = {}
        self._next_index = 0
        self._kept_counts: dict[int, int] = {}  # kept subscriptions per context (its index)
        self._ready: deque[int] = deque()  # subscriptions with updates to take (their indexes)
        self._sweeper: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def contexts(self) -> Sequence[Context]:
        return self._contexts if self._contexts is not None else client_contexts()

    def kept_count(self) -> int:
        """How many subscriptions are open between reads."""
        with self._lock:
            return sum(1 for entry in self._subscriptions.values() if entry.kept)

    def read(self, addresses: Sequence[str], timeout: float = 2.0) -> dict[str, ReadResult]:
        """The current value of every address at once: {address: ReadResult} within `timeout`
        seconds of the last answer (``disconnected`` for an address that did not answer: a read
        cannot tell an absent channel from a server too slow to answer in time; the failure's
        text for one that failed).

        An address whose subscription is open and connected answers with its latest update at
        once; the others wait for their subscription's first update (one made now if there is
        none, kept open afterwards within the bounds). An address may carry its ``pva://`` (the
        registry's spelling); results are keyed by the address as given. Each answer's metadata
        is kept for :meth:`metadata`."""
        addresses = list(dict.fromkeys(addresses))
        outcomes: list[tuple[Value, Metadata] | str | None] = [None] * len(addresses)
        transient: list[_Kept] = []
        with _closer.busy():
            with self._lock:
                self._take_updates()
                entries = [self._entry(address, transient) for address in addresses]
                waiting = self._answer(entries, range(len(entries)), outcomes)
            deadline = time.monotonic() + timeout
            while waiting and time.monotonic() < deadline:
                time.sleep(_IDLE_POLL)
                with self._lock:
                    if not self._ready:
                        continue
                    self._take_updates()
                    still = self._answer(entries, waiting, outcomes)
                if len(still) < len(waiting):
                    deadline = time.monotonic() + timeout
                waiting = still
            # Closed after this read: those beyond the bounds, and those that failed (a kept one
            # is made again by the next read that asks).
            done = transient + [entry for entry in entries if entry.kept and entry.error is not None]
            if done:
                with self._lock:
                    for entry in done:
                        self._forget(entry)
                _closer.close_later([entry.monitor for entry in done])
        self._start_sweeper()
        results = {}
        for address, outcome in zip(addresses, outcomes, strict=True):
            if outcome is None or isinstance(outcome, str):
                results[address] = ReadResult(address, None, outcome or _missing(reached=False, sent=True))
            else:
                reading, self._metadata[address] = outcome
                results[address] = ReadResult(address, reading, None)
        return results

    def _entry(self, address: str, transient: list) -> _Kept:
        """The subscription of `address` (under the lock), made now if there is none: kept if its
        context has room, else added to `transient` (closed after this read)."""
        entry = self._subscriptions.get(address)
        if entry is not None:
            entry.used = time.monotonic()
            return entry
        contexts = self.contexts
        context = zlib.crc32(address.encode()) % len(contexts)  # as context_of: the channel's context
        kept = self.keep_seconds > 0 and self._kept_counts.get(context, 0) < self.keep_per_context
        index = self._next_index
        self._next_index += 1
        entry = _Kept(address, context, index, kept)
        # Recorded before the subscription starts: its first update may arrive at once.
        self._by_index[index] = entry
        if kept:
            self._subscriptions[address] = entry
            self._kept_counts[context] = self._kept_counts.get(context, 0) + 1
        else:
            transient.append(entry)
        entry.monitor = _p4p.ClientMonitor(
            contexts[context]._ctxt, name_of(address), handler=partial(self._ready.append, index), pvRequest=_REQUEST
        )
        return entry

    def _take_updates(self) -> None:
        """Pop every pending update of every subscription (under the lock): each keeps its
        latest value, or loses it on a disconnection."""
        ready, by_index, now = self._ready, self._by_index, time.time()
        for _ in range(len(ready)):
            entry = by_index.get(ready.popleft())
            if entry is None:
                continue  # closed meanwhile
            while True:
                try:
                    update = entry.monitor.pop()
                except Exception as exc:  # noqa: BLE001  (p4p returns what the server sent, may raise it)
                    update = exc
                if update is None:
                    break
                if isinstance(update, Exception):
                    entry.raw = entry.decoded = None  # no longer current
                    if not isinstance(update, (Disconnected, Cancelled)):
                        entry.error = _error_text(update)
                    continue
                entry.raw, entry.received, entry.decoded, entry.error = update, now, None, None

    def _answer(self, entries: list[_Kept], indexes, outcomes: list) -> list[int]:
        """Fill `outcomes` for the `indexes` whose subscription has a current value (or a
        failure); the indexes still waiting."""
        waiting = []
        for index in indexes:
            entry = entries[index]
            if entry.raw is not None:
                if entry.decoded is None:
                    entry.decoded = decode(entry.address, entry.raw, entry.received)
                outcomes[index] = entry.decoded
            elif entry.error is not None:
                outcomes[index] = entry.error
            else:
                waiting.append(index)
        return waiting

    def _forget(self, entry: _Kept) -> None:
        """Drop `entry` from the bookkeeping (under the lock); the caller closes its monitor."""
        self._by_index.pop(entry.index, None)
        if entry.kept and self._subscriptions.get(entry.address) is entry:
            del self._subscriptions[entry.address]
            self._kept_counts[entry.context] -= 1

    def sweep(self, now: float | None = None) -> int:
        """Close the subscriptions no read has used for `keep_seconds`; how many."""
        now = time.monotonic() if now is None else now
        with self._lock:
            idle = [entry for entry in self._subscriptions.values() if now - entry.used >= self.keep_seconds]
            for entry in idle:
                self._forget(entry)
        _closer.close_later([entry.monitor for entry in idle])
        return len(idle)

    def _start_sweeper(self) -> None:
        if self._sweeper is not None or not self._subscriptions:
            return
        with self._lock:
            if self._sweeper is None:
                self._sweeper = threading.Thread(target=self._sweep_often, name="pva-keeper", daemon=True)
                self._sweeper.start()

    def _sweep_often(self) -> None:
        while not self._stop.wait(max(1.0, self.keep_seconds / 4)):
            self.sweep()

    def close(self, cancel: bool = True) -> None:
        """Stop sweeping and close every kept subscription (now, in this thread; with `cancel`
        False only forget them: their contexts are about to close, which ends them all)."""
        self._stop.set()
        with self._lock:
            entries = list(self._subscriptions.values())
            for entry in entries:
                self._forget(entry)
        if cancel:
            for entry in entries:
                entry.monitor.close()

    def connect(self, addresses: Iterable[str], timeout: float | None = None) -> set[str]:
        """The addresses that answer a read within `timeout` s (2 s if None): pvAccess has no
        separate connect, and a channel once created stays cached on its context."""
        results = self.read(list(addresses), 2.0 if timeout is None else timeout)
        return {address for address, result in results.items() if result.error is None}

    def metadata(self, addresses: Sequence[str]) -> dict[str, Metadata | None]:
        """The metadata of each address's latest :meth:`read` (None if never read). pvAccess tells
        a client no access rights: ``write_access`` stays True, and a refused put says so."""
        return {address: self._metadata.get(address) for address in addresses}

    def put(
        self, requests: Sequence[PutRequest], timeout: float = 5.0, max_outstanding: int | None = None
    ) -> dict[str, PutResult]:
        """Write every request, at most `max_outstanding` unfinished at a time (None: all at once):
        {address: PutResult}. ``wait`` puts complete when the server has finished processing them
        (pvAccess' ``record[block=true]``); the others when it has accepted them. The timeout
        counts from the last completion. A put that timed out may still have been applied; one
        whose channel never answered is ``disconnected`` and was not sent."""
        contexts, ready = self.contexts, deque()
        operations: list = []
        answered = [False] * len(requests)
        errors: list[str | None] = [None] * len(requests)
        # A put's builder runs once the server has told the channel's type: the channel connected.
        reached = [False] * len(requests)

        def take(item, _received: float) -> bool:
            index, code, message, value = item
            if code == _CANCELLED or answered[index]:
                return False
            answered[index] = True
            if code == _REMOTE_ERROR:
                errors[index] = _error_text(RemoteError(message))
            elif code == _BUILDER_ERROR:  # (type, value, traceback) of what the builder raised
                errors[index] = _error_text(value[0](value[1]))
            return True

        def start(index: int):
            request = requests[index]
            return _p4p.ClientOperation(
                context_of(request.address, contexts)._ctxt,
                name_of(request.address),
                handler=partial(_finished, ready, index),
                builder=_builder(request.value, partial(reached.__setitem__, index, True)),
                pvRequest=_PUT_WAIT if request.wait else _PUT_NO_WAIT,
                # A label needs the enum's choices, which only a get before the put brings.
                get=isinstance(request.value, str),
                put=True,
            )

        _run_all(operations, start, len(requests), ready, take, timeout, max_outstanding)
        results = {}
        for index, request in enumerate(requests):
            error = errors[index] if answered[index] else _missing(reached[index], index < len(operations))
            ok = error is None
            results[request.address] = PutResult(request.address, ok, error, ok and request.wait)
        return results


_service: PvaService | None = None
_service_lock = threading.Lock()


def pva_service() -> PvaService:
    """The process's pvAccess service (thread-safe)."""
    global _service
    with _service_lock:
        if _service is None:
            _service = PvaService()
        return _service


# Subscriptions.

POLL_CHANNELS = 5000  # channels whose updates one ChannelSet.poll converts, at most
SUBSCRIBE_PER_POLL = 5000  # subscriptions one ChannelSet.poll starts, at most


class _NoChannels:
    """The handler of ChannelSet.peers' gateway providers: they serve no server, and would
    refuse every channel if one asked."""

    def testChannel(self, *_args):
        return _gw.Provider.Ignore


@dataclass(slots=True)
class _Channel:
    address: str
    subscription: object
    connected: bool = False
    metadata: Metadata | None = field(default=None)
    last: Value | None = field(default=None)  # the latest value (its kind: how to read the next)


class ChannelSet:
    """Subscriptions to many addresses, drained in batches by :meth:`poll` (one thread).

    p4p calls a subscription's handler (on its own threads) when its queue of updates becomes
    non-empty; the handler only queues the channel's index. :meth:`poll` then pops every
    pending update of those channels and converts it in the calling thread. A channel's first
    value after it connects also reports it ``connected`` with its :class:`Metadata`; a
    disconnection reports it ``disconnected``.
    """

    def __init__(self, contexts: Sequence[Context] | None = None):
        self._contexts = contexts if contexts is not None else client_contexts()
        self._channels: dict[int, _Channel] = {}
        self._index: dict[str, int] = {}
        self._next = 0
        self._ready: deque[int] = deque()
        self._unsubscribed: deque[int] = deque()  # added, subscribed by a later poll
        self._closed = False
        self._peer_probes: list | None = None  # see peers()

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, address: str) -> bool:
        return address in self._index

    def addresses(self) -> set[str]:
        return set(self._index)

    def add(self, addresses: Iterable[str]) -> None:
        """Subscribe to every address not subscribed yet: returns at once, the subscriptions
        start in the next polls, :data:`SUBSCRIBE_PER_POLL` a poll (starting 50,000 took 4-8 s
        on a loaded 2-core machine, more than the monitor may go without renewing its lease)."""
        self._check_open()
        for address in addresses:
            if address in self._index:
                continue
            index = self._next
            self._next += 1
            self._channels[index] = _Channel(address, None)
            self._index[address] = index
            self._unsubscribed.append(index)

    def _subscribe(self, count: int) -> None:
        contexts, ready, channels, waiting = self._contexts, self._ready, self._channels, self._unsubscribed
        for _ in range(min(count, len(waiting))):
            index = waiting.popleft()
            channel = channels.get(index)
            if channel is None:
                continue  # removed meanwhile
            # p4p's own ClientMonitor, below p4p.client.raw's Subscription: its handler is then a
            # C-level call (no Python frame per update) that queues the channel's index.
            channel.subscription = _p4p.ClientMonitor(
                context_of(channel.address, contexts)._ctxt,
                name_of(channel.address),
                handler=partial(ready.append, index),
                pvRequest=_REQUEST,
            )

    def remove(self, addresses: Iterable[str]) -> None:
        for address in addresses:
            index = self._index.pop(address, None)
            if index is not None:
                subscription = self._channels.pop(index).subscription
                if subscription is not None:
                    subscription.close()

    def is_connected(self, address: str) -> bool:
        index = self._index.get(address)
        return index is not None and self._channels[index].connected

    def connected_count(self) -> int:
        return sum(1 for channel in self._channels.values() if channel.connected)

    def metadata(self, address: str) -> Metadata | None:
        index = self._index.get(address)
        return None if index is None else self._channels[index].metadata

    def peers(self) -> dict[str, str]:
        """{address: the server ("host:port") it is connected to} of the channels connected now.

        p4p's client objects do not expose a channel's server, but pvxs's client report does,
        and p4p reaches it through its gateway's upstream provider (``_gw.Provider.report``): it
        lists every channel of a client context that has a server, with the server's address (its
        cost grows with the channels: benchmarks/bench_pva_peers.py). One such provider per
        context is made on the first call and dropped by :meth:`close`; it serves nothing (no
        server is ever given it, and p4p registers it nowhere).
        """
        self._check_open()
        if self._peer_probes is None:
            self._peer_probes = [
                _gw.Provider(f"squirrel-peers-{number}", context, _NoChannels())
                for number, context in enumerate(self._contexts)
            ]
        by_name: dict[str, str] = {}
        for probe in self._peer_probes:
            by_name.update((row[0], row[3]) for row in probe.report(1.0) if row[3])
        return {address: by_name[name_of(address)] for address in self._index if name_of(address) in by_name}

    def poll(self, timeout: float) -> PollResult:
        """Wait up to `timeout` seconds for updates, then return the pending ones of at most
        :data:`POLL_CHANNELS` channels (the others wait for the next poll: 50,000 first values
        converted in one call took 2-3 s, longer than the monitor may go without renewing its
        lease)."""
        self._check_open()
        deadline = time.monotonic() + timeout
        if self._unsubscribed:
            self._subscribe(SUBSCRIBE_PER_POLL)
            if self._unsubscribed:
                deadline = 0.0  # more to start: no waiting before the next poll
        while not self._ready and time.monotonic() < deadline:
            time.sleep(_IDLE_POLL)  # the handlers only queue (no lock, no event): look again soon
        result = PollResult()
        ready, channels, now = self._ready, self._channels, time.time()
        for _ in range(min(len(ready), POLL_CHANNELS)):
            channel = channels.get(ready.popleft())
            if channel is None or channel.subscription is None:
                continue  # removed meanwhile
            self._drain(channel, result, now)
        return result

    def _drain(self, channel: _Channel, result: PollResult, now: float) -> None:
        pop = channel.subscription.pop
        while True:
            try:
                update = pop()
            except Exception as exc:  # noqa: BLE001  (p4p raises what the server sent)
                update = exc
            if update is None:
                return
            if isinstance(update, Exception):
                if channel.connected and isinstance(update, (Disconnected, Finished, RemoteError)):
                    channel.connected = False
                    channel.last = None
                    result.disconnected.append(channel.address)
                continue
            if channel.connected and channel.last is not None:
                value = channel.last = decode_next(channel.last, update, now)
                result.readings.append(value)
                continue
            value, meta = decode(channel.address, update, now)
            channel.last = value
            if not channel.connected:
                channel.connected = True
                channel.metadata = meta
                result.connected.append(channel.address)
                result.metadata.append(meta)
            result.readings.append(value)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for channel in self._channels.values():
            if channel.subscription is not None:
                channel.subscription.close()
        self._channels.clear()
        self._index.clear()
        self._peer_probes = None

    def _check_open(self) -> None:
        if self._closed:
            raise PvAccessError("this channel set is closed")
