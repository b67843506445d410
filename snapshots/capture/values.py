"""A snapshot's rows from values: pure functions, no database.

A sample is a :class:`squirrel_site.epics_values.Value` (read directly or from the monitor's
cache). :func:`pv_row` turns one PV's setpoint and readback samples plus the setpoint's metadata
into a row tuple in :data:`ROW_COLUMNS` order, ready for COPY, in the columns of
:func:`squirrel_site.epics_values.to_columns`; :func:`reading_of` turns a stored value back into
a Value.
"""

from __future__ import annotations

from datetime import UTC, datetime

from squirrel_site import epics_values as ev
from squirrel_site.epics_values import Value

# SnapshotValue columns in the order of the tuples pv_row() builds (the snapshot id comes first
# when the rows are written).
ROW_COLUMNS = (
    "pv_id",
    "pv_name",
    "readback_name",
    "value_type",
    "setpoint_num",
    "setpoint_str",
    "setpoint_array",
    "status",
    "severity",
    "timestamp",
    "readback_num",
    "readback_str",
    "readback_array",
    "readback_status",
    "readback_severity",
    "readback_timestamp",
    "units",
    "precision",
    "enum_labels",
    "source",
    "age",
    "connected",
    "reason",
)
CONNECTED_INDEX = ROW_COLUMNS.index("connected")
# A snapshot from the archive's rows: ROW_COLUMNS and the archiver each value came from.
ARCHIVE_ROW_COLUMNS = (*ROW_COLUMNS, "archiver")

# Why a PV has no setpoint value.
DISCONNECTED = "disconnected"
NO_VALUE_IN_CACHE = "no value in cache"
NO_VALUE = "no value"
NOT_READ = "not read"

_NONE = ev.NO_VALUE
_NO_VALUE = (_NONE, None, None, None)


def to_datetime(timestamp: float) -> datetime | None:
    """An IOC timestamp (Unix seconds) as an aware datetime; None for 0 (never processed)."""
    return datetime.fromtimestamp(timestamp, UTC) if timestamp else None


def from_datetime(moment: datetime | None) -> float:
    """The inverse of :func:`to_datetime`."""
    return moment.timestamp() if moment is not None else 0.0


def pv_row(
    pv_id, pv_name: str, readback_name: str, setpoint, readback, meta, source: str, taken: float, reason: str = ""
) -> tuple:
    """One PV's row in ROW_COLUMNS order.

    `setpoint` and `readback` are samples of connected channels or None (with `reason` saying why
    the setpoint has none); `meta` is the setpoint's LiveMeta or None; `source` is where the
    caller looked (a ValueSource value). A PV without a setpoint
    value is stored disconnected: no setpoint columns, never a stale number, but a readback that
    was read is kept. `age` is `taken` minus the setpoint's (else the readback's) receive time.
    """
    value_type, sp_num, sp_str, sp_array = _NO_VALUE
    status = severity = sp_time = None
    if setpoint is not None:
        try:
            label = ev.label_of(setpoint, meta)
            value_type, sp_num, sp_str, sp_array = ev.to_columns(setpoint.kind, setpoint.value, label)
        except ev.UnsupportedValue as error:
            reason = str(error)
        if value_type == _NONE:
            reason = reason or NO_VALUE
        else:
            status, severity, sp_time = setpoint.status, setpoint.severity, to_datetime(setpoint.timestamp)
    rb_type, rb_num, rb_str, rb_array = _NO_VALUE
    rb_status = rb_severity = rb_time = None
    if readback is not None:
        try:
            label = ev.label_of(readback, meta)
            rb_type, rb_num, rb_str, rb_array = ev.to_columns(readback.kind, readback.value, label)
        except ev.UnsupportedValue:
            pass
        if rb_type != _NONE:
            rb_status, rb_severity, rb_time = readback.status, readback.severity, to_datetime(readback.timestamp)
    connected = value_type != _NONE
    if not connected:
        value_type = rb_type
    sample = setpoint if connected else (readback if rb_type != _NONE else None)
    age = taken - sample.received if sample is not None else None
    return (
        pv_id,
        pv_name,
        readback_name,
        value_type,
        sp_num,
        sp_str,
        sp_array,
        status,
        severity,
        sp_time,
        rb_num,
        rb_str,
        rb_array,
        rb_status,
        rb_severity,
        rb_time,
        meta.units if meta is not None else "",
        meta.precision if meta is not None else None,
        meta.enum_labels if meta is not None else None,
        source,
        age,
        connected,
        "" if connected else reason,
    )


def reading_of(stored, *, readback: bool = False, received: float | None = None) -> Value | None:
    """A stored SnapshotValue's setpoint (or readback) as a Value; None if it has no value.

    Enums come back as their index, as Channel Access gives them. `received` defaults to the
    IOC timestamp.
    """
    value = stored.readback_value if readback else stored.setpoint_value
    if value is None:
        return None
    moment = stored.readback_timestamp if readback else stored.timestamp
    timestamp = from_datetime(moment)
    return Value(
        address=stored.readback_name if readback else stored.pv_name,
        kind=stored.value_type,
        value=value,
        status=stored.readback_status if readback else stored.status,
        severity=stored.readback_severity if readback else stored.severity,
        timestamp=timestamp,
        received=timestamp if received is None else received,
    )
