"""Channel Access for many channels at once: the only EPICS API the rest of Squirrel uses.

pyepics' per-PV wrappers cost tens of microseconds of Python per call, which is tens of seconds
at 50,000 PVs. This module keeps pyepics as the dependency but drives its libca handle directly
(through :mod:`pvs.epics_bulk`, the binding and DBR codec, the only importer of pyepics).
Channels are created, subscribed and reported by a small C helper (pvs/native), whose callbacks
copy raw DBR buffers into one buffer that each poll decodes in a batch; gets and puts use one
Python callback for all channels. It returns plain dataclasses; failures are explicit
results, never pyepics' silent ``None``.

Reconnection is libca's: a channel whose IOC went away is searched again by libca's disconnect
governor every 10 s (measured: back 8-10 s after the IOC returns); channels that never connected
back off to EPICS_CA_MAX_SEARCH_PERIOD, and IOC beacons forwarded by the CA repeater
(:func:`run_ca_repeater`) bring them back as soon as their IOC starts.

A :class:`ChannelSet` lives in one thread. With a non-preemptive context (the default) every
callback runs inside :meth:`ChannelSet.poll`, in that thread, so no locks are needed. The monitor
drives one directly; snapshot and restore jobs, from any thread, use :class:`EpicsService`
(:func:`epics_service`), which runs one in a thread of its own and adds direct gets and puts.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pvs import epics_bulk as bulk
from pvs.epics_bulk import (  # noqa: F401  (part of this module's API)
    EPICS_EPOCH_OFFSET,
    ChannelAccessError,
    decode_time_buffer,
    run_ca_repeater,
)
from squirrel_site.epics_values import Value, kind_of_native, put_buffer


@dataclass(slots=True)
class Metadata:
    """What a channel says about itself once per connection: units, precision, labels, limits."""

    address: str
    kind: str
    count: int
    units: str = ""
    precision: int | None = None
    enum_labels: list[str] | None = None
    lower_limit: float | None = None
    upper_limit: float | None = None
    host: str = ""
    read_access: bool = True
    write_access: bool = True


@dataclass(slots=True)
class PollResult:
    """What happened during one :meth:`ChannelSet.poll`."""

    readings: list[Value] = field(default_factory=list)
    connected: list[str] = field(default_factory=list)
    disconnected: list[str] = field(default_factory=list)
    metadata: list[Metadata] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.readings or self.connected or self.disconnected or self.metadata)


# Why a read or put did not happen (ReadResult.error, PutResult.error), besides "failed: <CA message>".
DISCONNECTED = "disconnected"
NO_READ_ACCESS = "no read access"
NO_WRITE_ACCESS = "no write access"
TIMEOUT = "timeout"


@dataclass(slots=True)
class ReadResult:
    """One address of an :meth:`EpicsService.read`: a reading, or why there is none."""

    address: str
    reading: Value | None
    error: str | None = None


@dataclass(slots=True)
class PutRequest:
    """A value to write: int for an enum index, str for a string or an enum label, list for arrays."""

    address: str
    value: float | int | str | list
    wait: bool = False  # wait for the IOC to report completion (ca_array_put_callback)


@dataclass(slots=True)
class PutResult:
    """One address of an :meth:`EpicsService.put`.

    ``ok`` with ``wait=False``: the channel was connected and writable and libca sent the put to
    the IOC; nothing confirms the IOC applied it (read it back for that). ``ok`` with
    ``wait=True``: the IOC reported the put complete (``completed``), after any processing it
    triggers (forward links, delays). A put that timed out may still have been applied.
    """

    address: str
    ok: bool
    error: str | None = None
    completed: bool = False


@dataclass(slots=True)
class _Channel:
    address: str
    chid: ctypes.c_void_p
    native: int = -1
    count: int = 0
    connected: bool = False
    enum_labels: list[str] | None = None


METADATA_PER_POLL = 2000  # DBR_CTRL gets a ChannelSet sends per poll


class ChannelSet:
    """A set of Channel Access channels, kept connected and subscribed, polled by one thread.

    ``add`` creates channels (it does not wait); each channel subscribes to value and alarm
    changes when it first connects and asks once for its metadata. libca keeps subscriptions
    across disconnects and reconnects by itself.

    The per-channel work runs in C (pvs/native/squirrel_ca_helper.c): libca's callbacks record
    connections, values and metadata into one buffer and subscribe each channel as it connects;
    each poll takes that buffer in one call and decodes it here. With Python callbacks the same
    start-up took ~2.5 s of Python per 50,000 channels, during which libca read nothing.
    """

    def __init__(self, *, subscribe: bool = True, preemptive: bool = False):
        self._lib = bulk.load_libca(preemptive)
        self._helper, api = bulk.load_helper(self._lib)
        self._set = self._helper.sq_open(ctypes.byref(api), int(subscribe), bulk.DBE_VALUE | bulk.DBE_ALARM)
        if not self._set:
            raise MemoryError("no memory for a channel set")
        self._channels: dict[int, _Channel] = {}
        self._by_address: dict[str, int] = {}
        self._next_index = 1
        self._records = ctypes.c_void_p()
        # DBR_CTRL gets sent per poll from the backlog of connected channels; 0 holds them back.
        self.metadata_per_poll = METADATA_PER_POLL

    # Public API

    def __len__(self) -> int:
        return len(self._channels)

    def __contains__(self, address: str) -> bool:
        return address in self._by_address

    @property
    def addresses(self) -> set[str]:
        return set(self._by_address)

    def add(self, addresses: Iterable[str]) -> None:
        """Create channels for addresses not yet in the set; returns at once. Raises
        ChannelAccessError naming the first address libca refused (the others are created)."""
        errors = self.create(addresses)
        if errors:
            address, error = next(iter(errors.items()))
            raise ChannelAccessError(f"Cannot create a channel for {address!r}: {error}")

    def create(self, addresses: Iterable[str]) -> dict[str, str]:
        """Create channels for addresses not yet in the set, in as few calls as libca allows;
        returns libca's message for each address it refused."""
        self._check_open()
        errors: dict[str, str] = {}
        pending = []
        for address in dict.fromkeys(addresses):
            if "\0" in address:
                errors[address] = "a NUL in the name"
            elif address not in self._by_address:
                pending.append(address)
        status = ctypes.c_int()
        while pending:
            chids = (ctypes.c_void_p * len(pending))()
            names = b"\0".join(address.encode() for address in pending) + b"\0"
            first = self._next_index
            created = self._helper.sq_add(self._set, names, len(pending), first, chids, ctypes.byref(status))
            for offset in range(created):
                self._channels[first + offset] = _Channel(address=pending[offset], chid=ctypes.c_void_p(chids[offset]))
                self._by_address[pending[offset]] = first + offset
            self._next_index = first + created
            if created == len(pending):
                break
            errors[pending[created]] = bulk.message(status.value) if status.value else "out of memory"
            pending = pending[created + 1 :]
        return errors

    def remove(self, addresses: Iterable[str]) -> None:
        """Clear channels (and their subscriptions)."""
        indices = []
        for address in addresses:
            index = self._by_address.pop(address, None)
            if index is not None:
                del self._channels[index]
                indices.append(index)
        if indices and self._set:
            self._helper.sq_remove(self._set, (ctypes.c_uint32 * len(indices))(*indices), len(indices))

    def is_connected(self, address: str) -> bool:
        index = self._by_address.get(address)
        return index is not None and self._channels[index].connected

    def connected_count(self) -> int:
        return sum(1 for c in self._channels.values() if c.connected)

    def connection_counts_by_host(self) -> dict[str, tuple[int, int]]:
        """(connected, disconnected) channels per IOC host; never-connected ones under ''."""
        counts: dict[str, list[int]] = {}
        for channel in self._channels.values():
            host = self._host(channel) if channel.connected else ""
            entry = counts.setdefault(host, [0, 0])
            entry[0 if channel.connected else 1] += 1
        return {host: (c, d) for host, (c, d) in counts.items()}

    def poll(self, timeout: float) -> PollResult:
        """Process Channel Access events for up to `timeout` seconds and return what changed."""
        self._check_open()
        self._lib.ca_pend_event(timeout)
        return self._drain()

    def close(self) -> None:
        """Clear every channel and free the set; it cannot be used again."""
        if self._set:
            self.remove(list(self._by_address))
            self._helper.sq_close(self._set)
            self._set = None

    # Internals

    def _check_open(self) -> None:
        if not self._set:
            raise ChannelAccessError("The channel set is closed")

    def _channel(self, address: str) -> _Channel | None:
        index = self._by_address.get(address)
        return self._channels[index] if index is not None else None

    def _host(self, channel: _Channel) -> str:
        name = self._lib.ca_host_name(channel.chid)
        return name.decode(errors="replace") if name else ""

    def _drain(self) -> PollResult:
        """Decode the records the helper's callbacks wrote since the last poll, in their order."""
        result = PollResult()
        size = self._helper.sq_drain(self._set, ctypes.byref(self._records))
        if size == bulk.DRAIN_FAILED:
            raise MemoryError("the Channel Access helper ran out of memory; updates were lost")
        if size:
            data = ctypes.string_at(self._records.value, size)
            received = time.time()
            channels, readings = self._channels, result.readings
            unpack, step, offset = bulk.RECORD.unpack_from, bulk.RECORD.size, 0
            while offset < size:
                kind, index, dbr_type, count, length = unpack(data, offset)
                offset += step
                channel = channels.get(index)  # None: removed since
                if channel is None:
                    pass
                elif kind == bulk.RECORD_VALUE:
                    kind_, value, status, severity, stamp = decode_time_buffer(
                        bulk.native_of(dbr_type), count, data[offset : offset + length]
                    )
                    readings.append(Value(channel.address, kind_, value, status, severity, stamp, received))
                elif kind == bulk.RECORD_CONNECTED:
                    channel.connected, channel.native, channel.count = True, dbr_type, count
                    result.connected.append(channel.address)
                elif kind == bulk.RECORD_DISCONNECTED:
                    channel.connected = False
                    result.disconnected.append(channel.address)
                else:
                    raw = data[offset : offset + length]
                    result.metadata.append(self._decode_metadata(channel, dbr_type if dbr_type >= 0 else None, raw))
                offset += length
        # At start-up 86,000 DBR_CTRL gets sent at once compete with the subscriptions' first
        # values (measured: all values at 5.3 s instead of 4.0 s); a batch per poll lets values
        # come first and metadata follow within a few seconds.
        if self.metadata_per_poll:
            self._helper.sq_request_metadata(self._set, self.metadata_per_poll)
        return result

    def _decode_metadata(self, channel: _Channel, dbr_type: int | None, raw: bytes) -> Metadata:
        # By the reply's own type: the channel may have reconnected with another one since.
        native = bulk.dbr.STRING if dbr_type is None else bulk.native_of(dbr_type)
        kind = kind_of_native(native, channel.count)
        meta = Metadata(
            address=channel.address,
            kind=kind,
            count=channel.count,
            host=self._host(channel),
            # Access rights as the IOC granted them at connection (read once, like the rest).
            read_access=bool(self._lib.ca_read_access(channel.chid)),
            write_access=bool(self._lib.ca_write_access(channel.chid)),
        )
        if dbr_type is None:
            return meta
        ctrl = bulk.dbr.Map[dbr_type].from_buffer_copy(raw)
        if native == bulk.dbr.ENUM:
            labels = [bytes(ctrl.strs[i]).split(b"\0", 1)[0].decode("utf-8", "replace") for i in range(ctrl.no_str)]
            channel.enum_labels = labels
            meta.enum_labels = labels
            return meta
        meta.units = bytes(ctrl.units).split(b"\0", 1)[0].decode("utf-8", "replace")
        if hasattr(ctrl, "precision"):
            meta.precision = int(ctrl.precision)
        meta.lower_limit = float(ctrl.lower_ctrl_limit)
        meta.upper_limit = float(ctrl.upper_ctrl_limit)
        return meta

    def enum_labels(self, address: str) -> list[str] | None:
        """The labels of an enum channel, once its metadata has arrived."""
        channel = self._channel(address)
        return channel.enum_labels if channel is not None else None


# Errors by CA message number (status >> 3: the low bits hold a severity that varies by caller).
_ERROR_BY_MESSAGE = {
    10: TIMEOUT,
    13: DISCONNECTED,
    24: DISCONNECTED,
    45: TIMEOUT,
    46: NO_READ_ACCESS,
    47: NO_WRITE_ACCESS,
}
_IDLE_POLL = 0.005  # s: the longest a new request waits for an idle service thread
_BUSY_POLL = 0.001
_MAX_OUTSTANDING_GETS = 10_000
_ANSWER_GRACE = 30.0  # s past a request's deadline before its caller gives up on the service thread
_CONNECT, _READ, _PUT = "connect", "read", "put"


class _ServiceCall:
    """One caller's connect, read or put; the service thread owns it until it is done or expires.

    An address is `waiting` for its channel to connect, then `queued` to be sent, then
    `outstanding` (CA operation ids) until its reply; every address shares the call's deadline.
    """

    __slots__ = (
        "kind",
        "addresses",
        "requests",
        "timeout",
        "deadline",
        "max_outstanding",
        "waiting",
        "queued",
        "outstanding",
        "results",
        "error",
        "done",
    )

    def __init__(
        self,
        kind: str,
        addresses: list[str],
        timeout: float,
        max_outstanding: int = _MAX_OUTSTANDING_GETS,
        requests: dict[str, PutRequest] | None = None,
    ):
        if max_outstanding < 1:
            raise ValueError("max_outstanding must be at least 1")
        self.kind, self.addresses, self.requests = kind, addresses, requests
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.max_outstanding = max_outstanding
        self.waiting: set[str] = set()
        self.queued: deque[str] = deque()
        self.outstanding: set[int] = set()
        self.results: dict = {}
        self.error: Exception | None = None
        self.done = threading.Event()

    @property
    def busy(self) -> bool:
        return bool(self.waiting or self.queued or self.outstanding)

    def progressed(self, now: float) -> None:
        """A reply arrived: the timeout counts from the last reply, not from the start.

        So a batch of 80,000 reads that takes 2 s to transfer does not time out at 2 s, while
        an IOC that stopped answering still costs one timeout for the whole batch.
        """
        self.deadline = now + self.timeout

    def fail(self, address: str, error: str) -> None:
        if self.kind == _READ:
            self.results[address] = ReadResult(address, None, error)
        elif self.kind == _PUT:
            self.results[address] = PutResult(address, False, error)


class EpicsService:
    """A CA context in a thread of its own, keeping channels connected; methods are thread-safe and block the caller.

    Channels stay connected once created (warm), so later reads and puts skip the search. Every
    call's timeout counts from its last reply, for all its addresses at once: an IOC that is down
    costs one timeout per call, not one per PV, and a large batch is not cut short by its size. The
    thread polls a non-preemptive context and takes requests from a queue; libca sees only that
    thread. Create it in the process that uses it: CA does not survive fork().
    """

    def __init__(self, connect_timeout: float = 2.0):
        self.connect_timeout = connect_timeout
        self._requests: queue.SimpleQueue[_ServiceCall | None] = queue.SimpleQueue()
        self._metadata: dict[str, Metadata] = {}
        self._pid = os.getpid()
        self._closed = False
        self._close_lock = threading.Lock()
        # Everything below belongs to the service thread.
        self._lib = None
        self._channels: ChannelSet | None = None
        self._calls: list[_ServiceCall] = []
        self._waiters: dict[str, list[_ServiceCall]] = {}
        self._ops: dict[int, tuple[_ServiceCall, str]] = {}
        self._next_op = 1
        self._replies: deque[tuple[int, int, int, int, bytes | None]] = deque()
        self._on_get = bulk.EVENT_CB(self._get_callback)
        self._on_put = bulk.EVENT_CB(self._put_callback)
        self._start_error: Exception | None = None
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="epics-service", daemon=True)
        self._thread.start()
        ready.wait()
        if self._start_error is not None:
            self._closed = True
            raise ChannelAccessError(f"Cannot start the EPICS service: {self._start_error}") from self._start_error

    @property
    def closed(self) -> bool:
        return self._closed

    def connect(self, addresses: Iterable[str], timeout: float | None = None) -> set[str]:
        """Create channels not yet known and wait until all are connected or the timeout; the connected ones."""
        timeout = self.connect_timeout if timeout is None else timeout
        return set(self._submit(_ServiceCall(_CONNECT, list(dict.fromkeys(addresses)), timeout)))

    def read(self, addresses: Sequence[str], timeout: float = 2.0) -> dict[str, ReadResult]:
        """The current value of every address (DBR_TIME, native type); missing channels connect first."""
        unique = list(dict.fromkeys(addresses))
        results = self._submit(_ServiceCall(_READ, unique, timeout))
        return {address: results[address] for address in unique}

    def put(
        self, requests: Sequence[PutRequest], timeout: float = 5.0, max_outstanding: int = 2000
    ) -> dict[str, PutResult]:
        """Write values, at most `max_outstanding` unconfirmed at a time; see PutResult for what ``ok`` means.

        Channels without write access are reported and never written. One request per address.
        """
        by_address = {request.address: request for request in requests}
        if len(by_address) != len(requests):
            raise ValueError("put takes one request per address")
        results = self._submit(_ServiceCall(_PUT, list(by_address), timeout, max_outstanding, by_address))
        return {address: results[address] for address in by_address}

    def metadata(self, addresses: Sequence[str]) -> dict[str, Metadata | None]:
        """The latest metadata (units, enum labels, access rights) of each address; None if never connected."""
        return {address: self._metadata.get(address) for address in addresses}

    def close(self) -> None:
        """Clear every channel and stop the thread; calls waiting on it fail with ChannelAccessError."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self._requests.put(None)
        if self._thread is not threading.current_thread():
            self._thread.join(10.0)

    def _submit(self, call: _ServiceCall) -> dict:
        if os.getpid() != self._pid:
            raise ChannelAccessError("This EPICS service was started before fork(): Channel Access does not survive it")
        if self._closed:
            raise ChannelAccessError("The EPICS service is closed")
        self._requests.put(call)
        # The deadline moves while replies arrive; give up only when the thread stops answering.
        while not call.done.wait(max(0.0, call.deadline - time.monotonic()) + _ANSWER_GRACE):
            if time.monotonic() > call.deadline + _ANSWER_GRACE:
                raise ChannelAccessError("The EPICS service thread did not answer")
        if call.error is not None:
            raise call.error
        return call.results

    # The service thread.

    def _run(self, ready: threading.Event) -> None:
        try:
            self._lib = bulk.load_libca(preemptive=False)
            # Non-preemptive: callbacks run only while this thread is in ca_pend_event.
            status = self._lib.ca_context_create(0)
            if status != bulk.dbr.ECA_NORMAL:
                raise ChannelAccessError(bulk.message(status))
            self._channels = ChannelSet(subscribe=False)
        except Exception as exc:  # noqa: BLE001 - whatever failed is re-raised in the creating thread
            self._start_error = exc
            ready.set()
            return
        ready.set()
        try:
            while self._step():
                pass
        finally:
            self._shut_down()

    def _step(self) -> bool:
        """Take new requests, send what is queued, poll CA, hand out replies; False to stop."""
        while True:
            try:
                call = self._requests.get_nowait()
            except queue.Empty:
                break
            if call is None:
                return False
            self._start(call)
        self._send()
        polled = self._channels.poll(_BUSY_POLL if self._calls else _IDLE_POLL)
        for meta in polled.metadata:
            self._metadata[meta.address] = meta
        connected_at = time.monotonic()
        for address in polled.connected:
            for call in self._waiters.pop(address, ()):
                call.waiting.discard(address)
                call.progressed(connected_at)
                self._ready(call, address)
        self._collect()
        now = time.monotonic()
        for call in [call for call in self._calls if not call.busy or now >= call.deadline]:
            self._expire(call)
            self._calls.remove(call)
            call.done.set()
        return True

    def _start(self, call: _ServiceCall) -> None:
        channels = self._channels
        for address, error in channels.create(call.addresses).items():
            call.fail(address, f"failed: {error}")
        for address in call.addresses:
            if address in call.results:
                continue
            if channels.is_connected(address):
                self._ready(call, address)
            else:
                call.waiting.add(address)
                self._waiters.setdefault(address, []).append(call)
        self._calls.append(call)

    def _ready(self, call: _ServiceCall, address: str) -> None:
        """`address` is connected: decide what `call` does with it."""
        chid = self._channels._channel(address).chid
        if call.kind == _CONNECT:
            call.results[address] = True
        elif call.kind == _READ and not self._lib.ca_read_access(chid):
            call.fail(address, NO_READ_ACCESS)
        elif call.kind == _PUT and not self._lib.ca_write_access(chid):
            call.fail(address, NO_WRITE_ACCESS)
        else:
            call.queued.append(address)

    def _send(self) -> None:
        sent = False
        for call in self._calls:
            budget = call.max_outstanding - len(call.outstanding)
            while call.queued and budget > 0:
                address = call.queued.popleft()
                budget, sent = budget - 1, True
                op, self._next_op = self._next_op, self._next_op + 1
                if self._send_one(call, address, op):
                    self._ops[op] = (call, address)
                    call.outstanding.add(op)
        if sent:
            self._lib.ca_flush_io()

    def _send_one(self, call: _ServiceCall, address: str, op: int) -> bool:
        """Start one get or put; True if its callback will bring the result, else it is recorded."""
        lib, channel = self._lib, self._channels._channel(address)
        if call.kind == _READ:
            if channel.native not in bulk.NATIVE_TO_TIME:
                call.fail(address, f"failed: cannot read DBR type {channel.native}")
                return False
            # count 0: the IOC sends the current length of variable-length arrays.
            status = lib.ca_array_get_callback(bulk.NATIVE_TO_TIME[channel.native], 0, channel.chid, self._on_get, op)
        else:
            request = call.requests[address]
            try:
                dbr_type, count, data = put_buffer(channel.native, channel.count, request.value, channel.enum_labels)
            except ValueError as exc:
                call.fail(address, f"failed: {exc}")
                return False
            if request.wait:
                status = lib.ca_array_put_callback(dbr_type, count, channel.chid, data, self._on_put, op)
            else:
                status = lib.ca_array_put(dbr_type, count, channel.chid, data)
                if status == bulk.dbr.ECA_NORMAL:
                    call.results[address] = PutResult(address, True)
                    return False
        if status != bulk.dbr.ECA_NORMAL:
            call.fail(address, _error_for(status))
            return False
        return True

    def _get_callback(self, args) -> None:
        raw = None
        if args.status == bulk.dbr.ECA_NORMAL and args.dbr:
            native = bulk.native_of(args.type)
            raw = ctypes.string_at(
                args.dbr, bulk.VALUE_OFFSET[native] + args.count * ctypes.sizeof(bulk.dbr.Map[native])
            )
        self._replies.append((args.usr or 0, args.status, args.type, args.count, raw))

    def _put_callback(self, args) -> None:
        self._replies.append((args.usr or 0, args.status, 0, 0, None))

    def _collect(self) -> None:
        received, now = time.time(), time.monotonic()
        for op, status, dbr_type, count, raw in bulk.drain_queue(self._replies):
            entry = self._ops.pop(op, None)
            if entry is None:
                continue  # the reply to an expired call
            call, address = entry
            call.outstanding.discard(op)
            call.progressed(now)
            if status != bulk.dbr.ECA_NORMAL:
                call.fail(address, _error_for(status))
            elif call.kind == _PUT:
                call.results[address] = PutResult(address, True, completed=True)
            else:
                kind, value, severity_status, severity, stamp = decode_time_buffer(bulk.native_of(dbr_type), count, raw)
                reading = Value(address, kind, value, severity_status, severity, stamp, received)
                call.results[address] = ReadResult(address, reading)

    def _expire(self, call: _ServiceCall) -> None:
        """Give every address without a result its reason: not connected, or not answered in time."""
        for address in call.waiting:
            call.fail(address, DISCONNECTED)
            waiters = self._waiters.get(address)
            if waiters is not None:
                waiters.remove(call)
                if not waiters:
                    del self._waiters[address]
        for address in call.queued:
            call.fail(address, TIMEOUT)
        for op in call.outstanding:
            call.fail(self._ops.pop(op)[1], TIMEOUT)
        call.waiting.clear()
        call.queued.clear()
        call.outstanding.clear()

    def _shut_down(self) -> None:
        self._closed = True
        stopped = ChannelAccessError("The EPICS service stopped")
        pending = list(self._calls)
        while True:
            try:
                call = self._requests.get_nowait()
            except queue.Empty:
                break
            if call is not None:
                pending.append(call)
        for call in pending:
            call.error = stopped
            call.done.set()
        self._channels.close()
        # pyepics may have made its own context in this thread: leave that one to pyepics' atexit.
        if self._lib.ca_current_context() != bulk.ca.initial_context:
            self._lib.ca_context_destroy()


_service: EpicsService | None = None
_service_lock = threading.Lock()


def epics_service() -> EpicsService:
    """The process's EPICS service, started on first use (thread-safe)."""
    global _service
    with _service_lock:
        if _service is None or _service.closed:
            _service = EpicsService()
        return _service


@atexit.register
def _close_service() -> None:
    # Registered after pyepics' own atexit handler, so it runs first: channels are cleared
    # while libca still works, and no libca thread calls into a finalizing interpreter.
    if _service is not None:
        _service.close()


def _error_for(status: int) -> str:
    return _ERROR_BY_MESSAGE.get(status >> 3) or f"failed: {bulk.message(status)}"
