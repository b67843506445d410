"""Channel Access for many channels at once: the only EPICS API the rest of Squirrel uses.

pyepics' per-PV wrappers cost tens of microseconds of Python per call, which is tens of seconds
at 50,000 PVs. This module keeps pyepics as the dependency but drives its libca handle directly
(through :mod:`pvs.epics_bulk`, the binding and DBR codec, the only importer of pyepics):
one C callback for all channels' connection events, one for all value events, raw DBR buffers
copied in the callback and decoded in batches. It returns plain dataclasses; failures are explicit
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
    ENUM,
    EPICS_EPOCH_OFFSET,
    FLOAT,
    FLOAT_ARRAY,
    INT,
    INT_ARRAY,
    STRING,
    ChannelAccessError,
    decode_time_buffer,
    encode_put,
    run_ca_repeater,
)


@dataclass(slots=True)
class Reading:
    """One value of one channel as the IOC sent it."""

    address: str
    kind: str
    value: float | int | str | list | None
    status: int
    severity: int
    timestamp: float  # Unix seconds, IOC clock
    received: float  # Unix seconds, this host's clock


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

    readings: list[Reading] = field(default_factory=list)
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
    reading: Reading | None
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
    evid: ctypes.c_void_p | None = None
    connected: bool = False
    enum_labels: list[str] | None = None


_METADATA_PER_POLL = 2000


class ChannelSet:
    """A set of Channel Access channels, kept connected and subscribed, polled by one thread.

    ``add`` creates channels (it does not wait); each channel subscribes to value and alarm
    changes when it first connects and asks once for its metadata. libca keeps subscriptions
    across disconnects and reconnects by itself.
    """

    def __init__(self, *, subscribe: bool = True, preemptive: bool = False):
        self._lib = bulk.load_libca(preemptive)
        self._subscribe = subscribe
        self._channels: dict[int, _Channel] = {}
        self._by_address: dict[str, int] = {}
        self._next_index = 1  # 0 would be a NULL puser
        # Callbacks only append and poll() only pops: deques keep that safe even when a process
        # already has a preemptive context (pyepics' default), whose callbacks run on CA threads.
        self._raw_events: deque[tuple[int, int, int, bytes]] = deque()
        self._raw_meta: deque[tuple[int, int, bytes]] = deque()
        # Channels whose metadata is still to be asked for, a batch per poll (see _drain).
        self._meta_backlog: deque[int] = deque()
        self._conn_events: deque[tuple[int, bool]] = deque()
        # The CFUNCTYPE objects must outlive every channel that may call them.
        self._on_connection = bulk.CONNECTION_CB(self._connection_callback)
        self._on_event = bulk.EVENT_CB(self._event_callback)
        self._on_meta = bulk.EVENT_CB(self._meta_callback)

    # libca callbacks: copy what is needed and return; decoding happens in poll().

    def _connection_callback(self, args) -> None:
        self._conn_events.append((self._lib.ca_puser(args.chid) or 0, args.op == bulk.dbr.OP_CONN_UP))

    def _event_callback(self, args) -> None:
        if args.status != bulk.dbr.ECA_NORMAL or not args.dbr:
            return
        size = bulk.VALUE_OFFSET[bulk.native_of(args.type)] + args.count * ctypes.sizeof(bulk.dbr.Map[bulk.native_of(args.type)])
        self._raw_events.append((args.usr or 0, args.type, args.count, ctypes.string_at(args.dbr, size)))

    def _meta_callback(self, args) -> None:
        if args.status != bulk.dbr.ECA_NORMAL or not args.dbr:
            return
        self._raw_meta.append((args.usr or 0, args.type, ctypes.string_at(args.dbr, ctypes.sizeof(bulk.dbr.Map[args.type]))))

    # Public API

    def __len__(self) -> int:
        return len(self._channels)

    def __contains__(self, address: str) -> bool:
        return address in self._by_address

    @property
    def addresses(self) -> set[str]:
        return set(self._by_address)

    def add(self, addresses: Iterable[str]) -> None:
        """Create channels for addresses not yet in the set; returns at once."""
        for address in addresses:
            if address not in self._by_address and (error := self._create(address)):
                raise ChannelAccessError(f"Cannot create a channel for {address!r}: {error}")
        self._lib.ca_flush_io()

    def remove(self, addresses: Iterable[str]) -> None:
        """Clear channels (and their subscriptions)."""
        for address in addresses:
            index = self._by_address.pop(address, None)
            if index is None:
                continue
            channel = self._channels.pop(index)
            self._lib.ca_clear_channel(channel.chid)
        self._lib.ca_flush_io()

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
        self._lib.ca_pend_event(timeout)
        return self._drain()

    def close(self) -> None:
        """Clear every channel."""
        self.remove(list(self._by_address))

    # Internals

    def _create(self, address: str) -> str | None:
        """Create one channel without flushing; libca's message if it refuses."""
        index = self._next_index
        self._next_index += 1
        chid = ctypes.c_void_p()
        status = self._lib.ca_create_channel(address.encode(), self._on_connection, index, 0, ctypes.byref(chid))
        if status != bulk.dbr.ECA_NORMAL:
            return bulk.message(status)
        self._channels[index] = _Channel(address=address, chid=chid)
        self._by_address[address] = index
        return None

    def _channel(self, address: str) -> _Channel | None:
        index = self._by_address.get(address)
        return self._channels[index] if index is not None else None

    def _host(self, channel: _Channel) -> str:
        name = self._lib.ca_host_name(channel.chid)
        return name.decode(errors="replace") if name else ""

    def _drain(self) -> PollResult:
        result = PollResult()
        received = time.time()
        channels = self._channels
        for index, up in bulk.drain_queue(self._conn_events):
            channel = channels.get(index)
            if channel is None:
                continue
            channel.connected = up
            if up:
                self._on_connected(index, channel)
                result.connected.append(channel.address)
            else:
                result.disconnected.append(channel.address)
        for index, dbr_type, raw in bulk.drain_queue(self._raw_meta):
            channel = channels.get(index)
            if channel is not None:
                result.metadata.append(self._decode_metadata(channel, dbr_type, raw))
        readings = result.readings
        for index, dbr_type, count, raw in bulk.drain_queue(self._raw_events):
            channel = channels.get(index)
            if channel is None:
                continue
            kind, value, status, severity, stamp = decode_time_buffer(bulk.native_of(dbr_type), count, raw)
            readings.append(Reading(channel.address, kind, value, status, severity, stamp, received))
        self._request_metadata_batch()
        return result

    def _request_metadata_batch(self) -> None:
        """Ask for the metadata of at most _METADATA_PER_POLL channels.

        At start-up 86,000 DBR_CTRL gets sent at once compete with the subscriptions' first
        values (measured: all values at 5.3 s instead of 4.0 s); a batch per poll lets values
        come first and metadata follow within a few seconds.
        """
        backlog, channels = self._meta_backlog, self._channels
        for _ in range(min(len(backlog), _METADATA_PER_POLL)):
            index = backlog.popleft()
            channel = channels.get(index)
            if channel is not None and channel.connected:
                self._request_metadata(index, channel)

    def _on_connected(self, index: int, channel: _Channel) -> None:
        lib = self._lib
        native = lib.ca_field_type(channel.chid)
        count = lib.ca_element_count(channel.chid)
        if channel.evid is not None and native == channel.native:
            self._meta_backlog.append(index)
            return
        if channel.evid is not None:
            # The record changed type while the IOC was away: subscribe anew.
            lib.ca_clear_subscription(channel.evid)
            channel.evid = None
        channel.native, channel.count = native, count
        self._meta_backlog.append(index)
        if self._subscribe and native in bulk.NATIVE_TO_TIME:
            evid = ctypes.c_void_p()
            # count 0: the IOC sends the current length of variable-length arrays.
            status = lib.ca_create_subscription(
                bulk.NATIVE_TO_TIME[native], 0, channel.chid, bulk.DBE_VALUE | bulk.DBE_ALARM, self._on_event, index,
                ctypes.byref(evid),
            )
            if status == bulk.dbr.ECA_NORMAL:
                channel.evid = evid

    def _request_metadata(self, index: int, channel: _Channel) -> None:
        ctrl = bulk.NATIVE_TO_CTRL.get(channel.native)
        if ctrl is None:
            # Strings have no DBR_CTRL form; their metadata is what the channel itself knows.
            self._raw_meta.append((index, None, b""))
        else:
            self._lib.ca_array_get_callback(ctrl, 1, channel.chid, self._on_meta, index)

    def _decode_metadata(self, channel: _Channel, dbr_type: int | None, raw: bytes) -> Metadata:
        native = channel.native
        kind = STRING if native == bulk.dbr.STRING else bulk.NATIVE_LAYOUT[native][1 if channel.count == 1 else 2]
        meta = Metadata(
            address=channel.address, kind=kind, count=channel.count, host=self._host(channel),
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
_ERROR_BY_MESSAGE = {10: TIMEOUT, 13: DISCONNECTED, 24: DISCONNECTED, 45: TIMEOUT, 46: NO_READ_ACCESS, 47: NO_WRITE_ACCESS}
_IDLE_POLL = 0.005  # s: the longest a new request waits for an idle service thread
_BUSY_POLL = 0.001
_MAX_OUTSTANDING_GETS = 10_000
_ANSWER_GRACE = 30.0  # s past a request's deadline before its caller gives up on the service thread
_CONNECT, _READ, _PUT = "connect", "read", "put"


class _Job:
    """One caller's connect, read or put; the service thread owns it until it is done or expires.

    An address is `waiting` for its channel to connect, then `queued` to be sent, then
    `outstanding` (CA operation ids) until its reply; every address shares the job's deadline.
    """

    __slots__ = ("kind", "addresses", "requests", "timeout", "deadline", "max_outstanding", "waiting", "queued",
                 "outstanding", "results", "error", "done")  # fmt: skip

    def __init__(self, kind: str, addresses: list[str], timeout: float, max_outstanding: int = _MAX_OUTSTANDING_GETS,
                 requests: dict[str, PutRequest] | None = None):  # fmt: skip
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
    costs one timeout per call, not one per PV, and a large batch is not cut short by its size. The thread polls a non-preemptive context and takes requests from a queue;
    libca sees only that thread. Create it in the process that uses it: CA does not survive fork().
    """

    def __init__(self, connect_timeout: float = 2.0):
        self.connect_timeout = connect_timeout
        self._requests: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._metadata: dict[str, Metadata] = {}
        self._pid = os.getpid()
        self._closed = False
        self._close_lock = threading.Lock()
        # Everything below belongs to the service thread.
        self._lib = None
        self._channels: ChannelSet | None = None
        self._jobs: list[_Job] = []
        self._waiters: dict[str, list[_Job]] = {}
        self._ops: dict[int, tuple[_Job, str]] = {}
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
        return set(self._submit(_Job(_CONNECT, list(dict.fromkeys(addresses)), timeout)))

    def read(self, addresses: Sequence[str], timeout: float = 2.0) -> dict[str, ReadResult]:
        """The current value of every address (DBR_TIME, native type); missing channels connect first."""
        unique = list(dict.fromkeys(addresses))
        results = self._submit(_Job(_READ, unique, timeout))
        return {address: results[address] for address in unique}

    def put(self, requests: Sequence[PutRequest], timeout: float = 5.0, max_outstanding: int = 2000) -> dict[str, PutResult]:
        """Write values, at most `max_outstanding` unconfirmed at a time; see PutResult for what ``ok`` means.

        Channels without write access are reported and never written. One request per address.
        """
        by_address = {request.address: request for request in requests}
        if len(by_address) != len(requests):
            raise ValueError("put takes one request per address")
        results = self._submit(_Job(_PUT, list(by_address), timeout, max_outstanding, by_address))
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

    def _submit(self, job: _Job) -> dict:
        if os.getpid() != self._pid:
            raise ChannelAccessError("This EPICS service was started before fork(): Channel Access does not survive it")
        if self._closed:
            raise ChannelAccessError("The EPICS service is closed")
        self._requests.put(job)
        # The deadline moves while replies arrive; give up only when the thread stops answering.
        while not job.done.wait(max(0.0, job.deadline - time.monotonic()) + _ANSWER_GRACE):
            if time.monotonic() > job.deadline + _ANSWER_GRACE:
                raise ChannelAccessError("The EPICS service thread did not answer")
        if job.error is not None:
            raise job.error
        return job.results

    # The service thread.

    def _run(self, ready: threading.Event) -> None:
        try:
            self._lib = bulk.load_libca(preemptive=False)
            # Non-preemptive: callbacks run only while this thread is in ca_pend_event.
            status = self._lib.ca_context_create(0)
            if status != bulk.dbr.ECA_NORMAL:
                raise ChannelAccessError(bulk.message(status))
            self._channels = ChannelSet(subscribe=False)
        except Exception as exc:  # reported to the creating thread
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
                job = self._requests.get_nowait()
            except queue.Empty:
                break
            if job is None:
                return False
            self._start(job)
        self._send()
        polled = self._channels.poll(_BUSY_POLL if self._jobs else _IDLE_POLL)
        for meta in polled.metadata:
            self._metadata[meta.address] = meta
        connected_at = time.monotonic()
        for address in polled.connected:
            for job in self._waiters.pop(address, ()):
                job.waiting.discard(address)
                job.progressed(connected_at)
                self._ready(job, address)
        self._collect()
        now = time.monotonic()
        for job in [job for job in self._jobs if not job.busy or now >= job.deadline]:
            self._expire(job)
            self._jobs.remove(job)
            job.done.set()
        return True

    def _start(self, job: _Job) -> None:
        channels = self._channels
        created = False
        for address in job.addresses:
            if address in channels:
                continue
            error = channels._create(address)
            created = True
            if error is not None:
                job.fail(address, f"failed: {error}")
        if created:
            self._lib.ca_flush_io()
        for address in job.addresses:
            if address in job.results:
                continue
            if channels.is_connected(address):
                self._ready(job, address)
            else:
                job.waiting.add(address)
                self._waiters.setdefault(address, []).append(job)
        self._jobs.append(job)

    def _ready(self, job: _Job, address: str) -> None:
        """`address` is connected: decide what `job` does with it."""
        chid = self._channels._channel(address).chid
        if job.kind == _CONNECT:
            job.results[address] = True
        elif job.kind == _READ and not self._lib.ca_read_access(chid):
            job.fail(address, NO_READ_ACCESS)
        elif job.kind == _PUT and not self._lib.ca_write_access(chid):
            job.fail(address, NO_WRITE_ACCESS)
        else:
            job.queued.append(address)

    def _send(self) -> None:
        sent = False
        for job in self._jobs:
            budget = job.max_outstanding - len(job.outstanding)
            while job.queued and budget > 0:
                address = job.queued.popleft()
                budget, sent = budget - 1, True
                op, self._next_op = self._next_op, self._next_op + 1
                if self._send_one(job, address, op):
                    self._ops[op] = (job, address)
                    job.outstanding.add(op)
        if sent:
            self._lib.ca_flush_io()

    def _send_one(self, job: _Job, address: str, op: int) -> bool:
        """Start one get or put; True if its callback will bring the result, else it is recorded."""
        lib, channel = self._lib, self._channels._channel(address)
        if job.kind == _READ:
            if channel.native not in bulk.NATIVE_TO_TIME:
                job.fail(address, f"failed: cannot read DBR type {channel.native}")
                return False
            # count 0: the IOC sends the current length of variable-length arrays.
            status = lib.ca_array_get_callback(bulk.NATIVE_TO_TIME[channel.native], 0, channel.chid, self._on_get, op)
        else:
            request = job.requests[address]
            try:
                dbr_type, count, data = encode_put(channel.native, channel.count, request.value, channel.enum_labels)
            except ValueError as exc:
                job.fail(address, f"failed: {exc}")
                return False
            if request.wait:
                status = lib.ca_array_put_callback(dbr_type, count, channel.chid, data, self._on_put, op)
            else:
                status = lib.ca_array_put(dbr_type, count, channel.chid, data)
                if status == bulk.dbr.ECA_NORMAL:
                    job.results[address] = PutResult(address, True)
                    return False
        if status != bulk.dbr.ECA_NORMAL:
            job.fail(address, _error_for(status))
            return False
        return True

    def _get_callback(self, args) -> None:
        raw = None
        if args.status == bulk.dbr.ECA_NORMAL and args.dbr:
            native = bulk.native_of(args.type)
            raw = ctypes.string_at(args.dbr, bulk.VALUE_OFFSET[native] + args.count * ctypes.sizeof(bulk.dbr.Map[native]))
        self._replies.append((args.usr or 0, args.status, args.type, args.count, raw))

    def _put_callback(self, args) -> None:
        self._replies.append((args.usr or 0, args.status, 0, 0, None))

    def _collect(self) -> None:
        received, now = time.time(), time.monotonic()
        for op, status, dbr_type, count, raw in bulk.drain_queue(self._replies):
            entry = self._ops.pop(op, None)
            if entry is None:
                continue  # the reply to an expired job
            job, address = entry
            job.outstanding.discard(op)
            job.progressed(now)
            if status != bulk.dbr.ECA_NORMAL:
                job.fail(address, _error_for(status))
            elif job.kind == _PUT:
                job.results[address] = PutResult(address, True, completed=True)
            else:
                kind, value, severity_status, severity, stamp = decode_time_buffer(bulk.native_of(dbr_type), count, raw)
                reading = Reading(address, kind, value, severity_status, severity, stamp, received)
                job.results[address] = ReadResult(address, reading)

    def _expire(self, job: _Job) -> None:
        """Give every address without a result its reason: not connected, or not answered in time."""
        for address in job.waiting:
            job.fail(address, DISCONNECTED)
            waiters = self._waiters.get(address)
            if waiters is not None:
                waiters.remove(job)
                if not waiters:
                    del self._waiters[address]
        for address in job.queued:
            job.fail(address, TIMEOUT)
        for op in job.outstanding:
            job.fail(self._ops.pop(op)[1], TIMEOUT)
        job.waiting.clear()
        job.queued.clear()
        job.outstanding.clear()

    def _shut_down(self) -> None:
        self._closed = True
        stopped = ChannelAccessError("The EPICS service stopped")
        pending = list(self._jobs)
        while True:
            try:
                job = self._requests.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                pending.append(job)
        for job in pending:
            job.error = stopped
            job.done.set()
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


