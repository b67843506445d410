"""Channel Access for many channels at once: the only module that imports pyepics.

pyepics' per-PV wrappers cost tens of microseconds of Python per call, which is tens of seconds
at 50,000 PVs. This module keeps pyepics as the dependency but drives its libca handle directly:
one C callback for all channels' connection events, one for all value events, raw DBR buffers
copied in the callback and decoded in batches. It returns plain dataclasses; failures are explicit
results, never pyepics' silent ``None``.

Reconnection is libca's: a channel whose IOC went away is searched again by libca's disconnect
governor every 10 s (measured: back 8-10 s after the IOC returns); channels that never connected
back off to EPICS_CA_MAX_SEARCH_PERIOD, and IOC beacons forwarded by the CA repeater
(:func:`run_ca_repeater`) bring them back as soon as their IOC starts.

A :class:`ChannelSet` lives in one thread. With a non-preemptive context (the default) every
callback runs inside :meth:`ChannelSet.poll`, in that thread, so no locks are needed.
"""

from __future__ import annotations

import ctypes
import struct
import time
from array import array
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import epics.ca as _ca
import epics.dbr as _dbr

# EPICS timestamps count from 1990-01-01; Unix from 1970-01-01.
EPICS_EPOCH_OFFSET = 631152000

FLOAT = "float"
INT = "int"
ENUM = "enum"
STRING = "string"
FLOAT_ARRAY = "float_array"
INT_ARRAY = "int_array"

_NATIVE_TO_TIME = {
    _dbr.STRING: _dbr.TIME_STRING,
    _dbr.SHORT: _dbr.TIME_SHORT,
    _dbr.FLOAT: _dbr.TIME_FLOAT,
    _dbr.ENUM: _dbr.TIME_ENUM,
    _dbr.CHAR: _dbr.TIME_CHAR,
    _dbr.LONG: _dbr.TIME_LONG,
    _dbr.DOUBLE: _dbr.TIME_DOUBLE,
}
_NATIVE_TO_CTRL = {
    _dbr.SHORT: _dbr.CTRL_SHORT,
    _dbr.FLOAT: _dbr.CTRL_FLOAT,
    _dbr.ENUM: _dbr.CTRL_ENUM,
    _dbr.CHAR: _dbr.CTRL_CHAR,
    _dbr.LONG: _dbr.CTRL_LONG,
    _dbr.DOUBLE: _dbr.CTRL_DOUBLE,
}
# (array typecode, scalar kind, array kind) per native type; strings are handled apart.
_NATIVE_LAYOUT = {
    _dbr.SHORT: ("h", INT, INT_ARRAY),
    _dbr.FLOAT: ("f", FLOAT, FLOAT_ARRAY),
    _dbr.ENUM: ("H", ENUM, INT_ARRAY),
    _dbr.CHAR: ("B", INT, INT_ARRAY),
    _dbr.LONG: ("i", INT, INT_ARRAY),
    _dbr.DOUBLE: ("d", FLOAT, FLOAT_ARRAY),
}
_HEADER = struct.Struct("<hhII")  # status, severity, seconds, nanoseconds
# Where the value starts in each DBR_TIME_* buffer, from pyepics' ctypes layouts of db_access.h.
_VALUE_OFFSET = {native: _dbr.Map[time_type].value.offset for native, time_type in _NATIVE_TO_TIME.items()}
_MAX_STRING = _dbr.MAX_STRING_SIZE
_DBE_VALUE, _DBE_ALARM = 1, 4
_ACCESS_READ, _ACCESS_WRITE = 1, 2


class ChannelAccessError(RuntimeError):
    """libca refused an operation (bad name, out of memory, context problems)."""


class _EventArgs(ctypes.Structure):
    # pyepics declares `usr` as a py_object; an integer index is all we pass, so use void*.
    _fields_ = [
        ("usr", ctypes.c_void_p),
        ("chid", ctypes.c_void_p),
        ("type", ctypes.c_long),
        ("count", ctypes.c_long),
        ("dbr", ctypes.c_void_p),
        ("status", ctypes.c_int),
    ]


class _ConnectionArgs(ctypes.Structure):
    _fields_ = [("chid", ctypes.c_void_p), ("op", ctypes.c_long)]


class _AccessArgs(ctypes.Structure):
    _fields_ = [("chid", ctypes.c_void_p), ("access", ctypes.c_ubyte)]


_CONNECTION_CB = ctypes.CFUNCTYPE(None, _ConnectionArgs)
_EVENT_CB = ctypes.CFUNCTYPE(None, _EventArgs)
_ACCESS_CB = ctypes.CFUNCTYPE(None, _AccessArgs)


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


@dataclass(slots=True)
class _Channel:
    address: str
    chid: ctypes.c_void_p
    native: int = -1
    count: int = 0
    evid: ctypes.c_void_p | None = None
    connected: bool = False
    enum_labels: list[str] | None = None
    access: int = _ACCESS_READ | _ACCESS_WRITE


_libca = None


def _load_libca(preemptive: bool):
    """Load libca once through pyepics and declare the signatures this module calls."""
    global _libca
    if _libca is not None:
        return _libca
    if _ca.libca is None:
        _ca.PREEMPTIVE_CALLBACK = preemptive
        _ca.initialize_libca()
    # A handle of our own to the same loaded library (same CA context): the prototypes set
    # below must not replace pyepics' own, which other code in the process may still call.
    lib = ctypes.CDLL(_ca.find_libca())
    vp = ctypes.c_void_p
    lib.ca_create_channel.argtypes = [ctypes.c_char_p, _CONNECTION_CB, vp, ctypes.c_int, ctypes.POINTER(vp)]
    lib.ca_clear_channel.argtypes = [vp]
    lib.ca_puser.argtypes = [vp]
    lib.ca_puser.restype = vp
    lib.ca_field_type.argtypes = [vp]
    lib.ca_field_type.restype = ctypes.c_short
    lib.ca_element_count.argtypes = [vp]
    lib.ca_element_count.restype = ctypes.c_ulong
    lib.ca_host_name.argtypes = [vp]
    lib.ca_host_name.restype = ctypes.c_char_p
    lib.ca_message.restype = ctypes.c_char_p
    lib.ca_create_subscription.argtypes = [
        ctypes.c_long, ctypes.c_ulong, vp, ctypes.c_long, _EVENT_CB, vp, ctypes.POINTER(vp),
    ]
    lib.ca_clear_subscription.argtypes = [vp]
    lib.ca_array_get_callback.argtypes = [ctypes.c_long, ctypes.c_ulong, vp, _EVENT_CB, vp]
    lib.ca_replace_access_rights_event.argtypes = [vp, _ACCESS_CB]
    lib.ca_pend_event.argtypes = [ctypes.c_double]
    _libca = lib
    return lib


def _decode_string(raw: bytes, offset: int) -> str:
    end = raw.find(b"\0", offset, offset + _MAX_STRING)
    return raw[offset : end if end >= 0 else offset + _MAX_STRING].decode("utf-8", "replace")


def decode_time_buffer(native: int, count: int, raw: bytes, enum_labels: list[str] | None = None):
    """Decode a DBR_TIME_* buffer into (kind, value, status, severity, unix timestamp).

    Enums decode to their index; the label comes from the channel's metadata.
    """
    status, severity, secs, nsec = _HEADER.unpack_from(raw, 0)
    timestamp = secs + EPICS_EPOCH_OFFSET + nsec * 1e-9 if secs else 0.0
    offset = _VALUE_OFFSET[native]
    if native == _dbr.STRING:
        if count <= 1:
            return STRING, _decode_string(raw, offset), status, severity, timestamp
        values = [_decode_string(raw, offset + i * _MAX_STRING) for i in range(count)]
        return STRING, values, status, severity, timestamp
    typecode, scalar_kind, array_kind = _NATIVE_LAYOUT[native]
    values = array(typecode)
    values.frombytes(raw[offset : offset + count * values.itemsize])
    if count == 1:
        return scalar_kind, values[0], status, severity, timestamp
    return array_kind, values.tolist(), status, severity, timestamp


class ChannelSet:
    """A set of Channel Access channels, kept connected and subscribed, polled by one thread.

    ``add`` creates channels (it does not wait); each channel subscribes to value and alarm
    changes when it first connects and asks once for its metadata. libca keeps subscriptions
    across disconnects and reconnects by itself.
    """

    def __init__(self, *, subscribe: bool = True, preemptive: bool = False):
        self._lib = _load_libca(preemptive)
        self._subscribe = subscribe
        self._channels: dict[int, _Channel] = {}
        self._by_address: dict[str, int] = {}
        self._next_index = 1  # 0 would be a NULL puser
        # Callbacks only append and poll() only pops: deques keep that safe even when a process
        # already has a preemptive context (pyepics' default), whose callbacks run on CA threads.
        self._raw_events: deque[tuple[int, int, int, bytes]] = deque()
        self._raw_meta: deque[tuple[int, int, bytes]] = deque()
        self._conn_events: deque[tuple[int, bool]] = deque()
        self._access_events: deque[tuple[int, int]] = deque()
        # The CFUNCTYPE objects must outlive every channel that may call them.
        self._on_connection = _CONNECTION_CB(self._connection_callback)
        self._on_event = _EVENT_CB(self._event_callback)
        self._on_meta = _EVENT_CB(self._meta_callback)
        self._on_access = _ACCESS_CB(self._access_callback)

    # libca callbacks: copy what is needed and return; decoding happens in poll().

    def _connection_callback(self, args) -> None:
        self._conn_events.append((self._lib.ca_puser(args.chid) or 0, args.op == _dbr.OP_CONN_UP))

    def _event_callback(self, args) -> None:
        if args.status != _dbr.ECA_NORMAL or not args.dbr:
            return
        size = _VALUE_OFFSET[_native_of(args.type)] + args.count * ctypes.sizeof(_dbr.Map[_native_of(args.type)])
        self._raw_events.append((args.usr or 0, args.type, args.count, ctypes.string_at(args.dbr, size)))

    def _meta_callback(self, args) -> None:
        if args.status != _dbr.ECA_NORMAL or not args.dbr:
            return
        self._raw_meta.append((args.usr or 0, args.type, ctypes.string_at(args.dbr, ctypes.sizeof(_dbr.Map[args.type]))))

    def _access_callback(self, args) -> None:
        self._access_events.append((self._lib.ca_puser(args.chid) or 0, args.access))

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
        lib = self._lib
        for address in addresses:
            if address in self._by_address:
                continue
            index = self._next_index
            self._next_index += 1
            chid = ctypes.c_void_p()
            status = lib.ca_create_channel(address.encode(), self._on_connection, index, 0, ctypes.byref(chid))
            if status != _dbr.ECA_NORMAL:
                raise ChannelAccessError(f"Cannot create a channel for {address!r}: {_message(status)}")
            self._channels[index] = _Channel(address=address, chid=chid)
            self._by_address[address] = index
        lib.ca_flush_io()

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

    def _host(self, channel: _Channel) -> str:
        name = self._lib.ca_host_name(channel.chid)
        return name.decode(errors="replace") if name else ""

    def _drain(self) -> PollResult:
        result = PollResult()
        received = time.time()
        channels = self._channels
        for index, up in _drain_queue(self._conn_events):
            channel = channels.get(index)
            if channel is None:
                continue
            channel.connected = up
            if up:
                self._on_connected(index, channel)
                result.connected.append(channel.address)
            else:
                result.disconnected.append(channel.address)
        for index, access in _drain_queue(self._access_events):
            channel = channels.get(index)
            if channel is not None and channel.access != access:
                channel.access = access
                # Metadata carries the access rights: send it again when they change.
                self._request_metadata(index, channel)
        for index, dbr_type, raw in _drain_queue(self._raw_meta):
            channel = channels.get(index)
            if channel is not None:
                result.metadata.append(self._decode_metadata(channel, dbr_type, raw))
        readings = result.readings
        for index, dbr_type, count, raw in _drain_queue(self._raw_events):
            channel = channels.get(index)
            if channel is None:
                continue
            kind, value, status, severity, stamp = decode_time_buffer(_native_of(dbr_type), count, raw)
            readings.append(Reading(channel.address, kind, value, status, severity, stamp, received))
        return result

    def _on_connected(self, index: int, channel: _Channel) -> None:
        lib = self._lib
        native = lib.ca_field_type(channel.chid)
        count = lib.ca_element_count(channel.chid)
        if channel.evid is not None and native == channel.native:
            self._request_metadata(index, channel)
            return
        if channel.evid is not None:
            # The record changed type while the IOC was away: subscribe anew.
            lib.ca_clear_subscription(channel.evid)
            channel.evid = None
        channel.native, channel.count = native, count
        lib.ca_replace_access_rights_event(channel.chid, self._on_access)
        self._request_metadata(index, channel)
        if self._subscribe and native in _NATIVE_TO_TIME:
            evid = ctypes.c_void_p()
            # count 0: the IOC sends the current length of variable-length arrays.
            status = lib.ca_create_subscription(
                _NATIVE_TO_TIME[native], 0, channel.chid, _DBE_VALUE | _DBE_ALARM, self._on_event, index,
                ctypes.byref(evid),
            )
            if status == _dbr.ECA_NORMAL:
                channel.evid = evid

    def _request_metadata(self, index: int, channel: _Channel) -> None:
        ctrl = _NATIVE_TO_CTRL.get(channel.native)
        if ctrl is None:
            # Strings have no DBR_CTRL form; their metadata is what the channel itself knows.
            self._raw_meta.append((index, None, b""))
        else:
            self._lib.ca_array_get_callback(ctrl, 1, channel.chid, self._on_meta, index)

    def _decode_metadata(self, channel: _Channel, dbr_type: int | None, raw: bytes) -> Metadata:
        native = channel.native
        kind = STRING if native == _dbr.STRING else _NATIVE_LAYOUT[native][1 if channel.count == 1 else 2]
        meta = Metadata(
            address=channel.address, kind=kind, count=channel.count, host=self._host(channel),
            read_access=bool(channel.access & _ACCESS_READ), write_access=bool(channel.access & _ACCESS_WRITE),
        )
        if dbr_type is None:
            return meta
        ctrl = _dbr.Map[dbr_type].from_buffer_copy(raw)
        if native == _dbr.ENUM:
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
        index = self._by_address.get(address)
        return self._channels[index].enum_labels if index is not None else None


def _drain_queue(queue: deque) -> list:
    """Everything in `queue` now; items appended meanwhile wait for the next poll."""
    return [queue.popleft() for _ in range(len(queue))]


def _native_of(dbr_type: int) -> int:
    return dbr_type % 7 if dbr_type < 35 else dbr_type


def _message(status: int) -> str:
    text = _libca.ca_message(status)
    return text.decode() if text else f"status {status}"


def run_ca_repeater() -> None:
    """Run the Channel Access repeater in this process; it blocks until the process ends.

    libca starts an executable named ``caRepeater`` from PATH when a client context starts;
    the repeater forwards IOC beacons to clients, which is how they notice an IOC that came
    back and reconnect at once instead of on their slowing search schedule. pyepics ships no
    such executable on Linux, but libca exports the repeater itself.
    """
    lib = ctypes.CDLL(_ca.find_libca())
    lib.caRepeaterThread.argtypes = [ctypes.c_void_p]
    lib.caRepeaterThread(None)
