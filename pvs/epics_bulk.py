"""The libca binding and DBR codec under :mod:`pvs.epics_io`: the only module that imports pyepics.

Everything else uses :mod:`pvs.epics_io`, which builds channel sets and the EPICS service on what is
here: pyepics' libca handle with the prototypes this layer calls, the ctypes shapes of libca's
callback arguments, and pure functions between DBR buffers and Python values.
"""

from __future__ import annotations

import ctypes
import importlib.util
import struct
from array import array
from collections import deque

import epics.ca as ca
import epics.dbr as dbr

from squirrel_site.epics_env import apply_loopback_defaults
from squirrel_site.epics_values import MAX_STRING_SIZE, NATIVE_LAYOUT, kind_of_native

# Before anything in this process can load libca (pyepics loads it lazily, not on import).
apply_loopback_defaults()

# EPICS timestamps count from 1990-01-01; Unix from 1970-01-01.
EPICS_EPOCH_OFFSET = 631152000

NATIVE_TO_TIME = {
    dbr.STRING: dbr.TIME_STRING,
    dbr.SHORT: dbr.TIME_SHORT,
    dbr.FLOAT: dbr.TIME_FLOAT,
    dbr.ENUM: dbr.TIME_ENUM,
    dbr.CHAR: dbr.TIME_CHAR,
    dbr.LONG: dbr.TIME_LONG,
    dbr.DOUBLE: dbr.TIME_DOUBLE,
}
HEADER = struct.Struct("<hhII")  # status, severity, seconds, nanoseconds
# Where the value starts in each DBR_TIME_* buffer, from pyepics' ctypes layouts of db_access.h.
VALUE_OFFSET = {native: dbr.Map[time_type].value.offset for native, time_type in NATIVE_TO_TIME.items()}
MAX_STRING = MAX_STRING_SIZE
DBE_VALUE, DBE_ALARM = 1, 4


class ChannelAccessError(RuntimeError):
    """libca refused an operation (bad name, out of memory, context problems)."""


class EventArgs(ctypes.Structure):
    # pyepics declares `usr` as a py_object; an integer index is all we pass, so use void*.
    _fields_ = [
        ("usr", ctypes.c_void_p),
        ("chid", ctypes.c_void_p),
        ("type", ctypes.c_long),
        ("count", ctypes.c_long),
        ("dbr", ctypes.c_void_p),
        ("status", ctypes.c_int),
    ]


EVENT_CB = ctypes.CFUNCTYPE(None, EventArgs)


_libca = None


def load_libca(preemptive: bool):
    """Load libca once through pyepics and declare the signatures this module calls."""
    global _libca
    if _libca is not None:
        return _libca
    if ca.libca is None:
        ca.PREEMPTIVE_CALLBACK = preemptive
        ca.initialize_libca()
    # A handle of our own to the same loaded library (same CA context): the prototypes set
    # below must not replace pyepics' own, which other code in the process may still call.
    lib = ctypes.CDLL(ca.find_libca())
    vp = ctypes.c_void_p
    # Channels are created, subscribed and cleared by the C helper (load_helper).
    lib.ca_host_name.argtypes = [vp]
    lib.ca_host_name.restype = ctypes.c_char_p
    lib.ca_message.restype = ctypes.c_char_p
    lib.ca_array_get_callback.argtypes = [ctypes.c_long, ctypes.c_ulong, vp, EVENT_CB, vp]
    lib.ca_pend_event.argtypes = [ctypes.c_double]
    lib.ca_array_put.argtypes = [ctypes.c_long, ctypes.c_ulong, vp, vp]
    lib.ca_array_put_callback.argtypes = [ctypes.c_long, ctypes.c_ulong, vp, vp, EVENT_CB, vp]
    lib.ca_read_access.argtypes = [vp]
    lib.ca_write_access.argtypes = [vp]
    lib.ca_context_create.argtypes = [ctypes.c_int]
    lib.ca_current_context.restype = vp
    _libca = lib
    return lib


# The C helper (pvs/native/squirrel_ca_helper.c): libca's per-channel callbacks in C, for ChannelSet.


# The libca functions the helper calls, in the order of sq_ca_api (then the two dbr_size tables).
_HELPER_CA_FUNCTIONS = (
    "create_channel",
    "clear_channel",
    "create_subscription",
    "clear_subscription",
    "array_get_callback",
    "field_type",
    "element_count",
    "puser",
    "flush_io",
)


class _CaApi(ctypes.Structure):
    """sq_ca_api: the libca functions and tables the helper calls, as addresses in pyepics' libca."""

    _fields_ = [(name, ctypes.c_void_p) for name in (*_HELPER_CA_FUNCTIONS, "dbr_size", "dbr_value_size")]


# A record in the helper's buffer: kind, channel index, type, count, size of the bytes that follow.
RECORD = struct.Struct("<BIiII")
RECORD_CONNECTED, RECORD_DISCONNECTED, RECORD_VALUE, RECORD_METADATA = 1, 2, 3, 4
DRAIN_FAILED = ctypes.c_size_t(-1).value

_helper = None


def load_helper(lib):
    """The helper library (built by `pip install -r requirements.txt`) with its signatures, and
    the api of `lib` (load_libca's) to open sets with: (library, _CaApi)."""
    global _helper
    if _helper is not None:
        return _helper
    # A plain C library installed as an extension file: found by name, never imported.
    spec = importlib.util.find_spec("squirrel_ca_helper")
    if spec is None or not spec.origin:
        raise ChannelAccessError(
            "The Channel Access helper is not installed: run `pip install -r requirements.txt` (it builds "
            "pvs/native with the C compiler)."
        )
    helper = ctypes.CDLL(spec.origin)
    vp = ctypes.c_void_p
    helper.sq_open.argtypes = [ctypes.POINTER(_CaApi), ctypes.c_int, ctypes.c_long]
    helper.sq_open.restype = vp
    helper.sq_add.argtypes = [vp, ctypes.c_char_p, ctypes.c_long, ctypes.c_uint32, vp, ctypes.POINTER(ctypes.c_int)]
    helper.sq_add.restype = ctypes.c_long
    helper.sq_remove.argtypes = [vp, vp, ctypes.c_long]
    helper.sq_remove.restype = None
    helper.sq_request_metadata.argtypes = [vp, ctypes.c_long]
    helper.sq_request_metadata.restype = ctypes.c_long
    helper.sq_drain.argtypes = [vp, ctypes.POINTER(vp)]
    helper.sq_drain.restype = ctypes.c_size_t
    helper.sq_close.argtypes = [vp]
    helper.sq_close.restype = None

    api = _CaApi(
        *(ctypes.cast(getattr(lib, f"ca_{name}"), vp).value for name in _HELPER_CA_FUNCTIONS),
        ctypes.addressof(ctypes.c_ushort.in_dll(lib, "dbr_size")),
        ctypes.addressof(ctypes.c_ushort.in_dll(lib, "dbr_value_size")),
    )
    _helper = (helper, api)
    return _helper


def _decode_string(raw: bytes, offset: int) -> str:
    end = raw.find(b"\0", offset, offset + MAX_STRING)
    return raw[offset : end if end >= 0 else offset + MAX_STRING].decode("utf-8", "replace")


def decode_time_buffer(native: int, count: int, raw: bytes, enum_labels: list[str] | None = None):
    """Decode a DBR_TIME_* buffer into (kind, value, status, severity, unix timestamp).

    Enums decode to their index; the label comes from the channel's metadata.
    """
    status, severity, secs, nsec = HEADER.unpack_from(raw, 0)
    timestamp = secs + EPICS_EPOCH_OFFSET + nsec * 1e-9 if secs else 0.0
    offset = VALUE_OFFSET[native]
    kind = kind_of_native(native, count)
    if native == dbr.STRING:
        if count <= 1:
            return kind, _decode_string(raw, offset), status, severity, timestamp
        values = [_decode_string(raw, offset + i * MAX_STRING) for i in range(count)]
        return kind, values, status, severity, timestamp
    values = array(NATIVE_LAYOUT[native][0])
    values.frombytes(raw[offset : offset + count * values.itemsize])
    if count == 1:
        return kind, values[0], status, severity, timestamp
    return kind, values.tolist(), status, severity, timestamp


def drain_queue(items: deque) -> list:
    """Everything in `items` now; items appended meanwhile wait for the next poll."""
    return [items.popleft() for _ in range(len(items))]


def native_of(dbr_type: int) -> int:
    return dbr_type % 7 if dbr_type < 35 else dbr_type


def message(status: int) -> str:
    text = _libca.ca_message(status)
    return text.decode() if text else f"status {status}"


def run_ca_repeater() -> None:
    """Run the Channel Access repeater in this process; it blocks until the process ends.

    libca starts an executable named ``caRepeater`` from PATH when a client context starts;
    the repeater forwards IOC beacons to clients, which is how they notice an IOC that came
    back and reconnect at once instead of on their slowing search schedule. pyepics ships no
    such executable on Linux, but libca exports the repeater itself.
    """
    lib = ctypes.CDLL(ca.find_libca())
    lib.caRepeaterThread.argtypes = [ctypes.c_void_p]
    lib.caRepeaterThread(None)
