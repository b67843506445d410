"""Conversion between EPICS values and SnapshotValue columns: pure functions, no database.

A sample is a :class:`pvs.epics_io.Reading` or a :class:`monitor.live.LiveValue` (both have
kind, value, status, severity, timestamp and received). :func:`pv_row` turns one PV's setpoint
and readback samples plus the setpoint's metadata into a row tuple in :data:`ROW_COLUMNS` order,
ready for COPY; :func:`reading_of` turns a stored value back into a Reading.
"""

from __future__ import annotations

from datetime import UTC, datetime

from monitor.display import display_text
from monitor.live import LiveMeta, LiveValue
from pvs import epics_io
from snapshots.capture.models import ValueType

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

# Why a PV has no setpoint value.
DISCONNECTED = "disconnected"
NO_VALUE_IN_CACHE = "no value in cache"
NO_VALUE = "no value"
NOT_READ = "not read"

# Plain strings: an enum member's .value is a descriptor call, 250,000 of them per 50,000-PV
# snapshot in the profile (~0.1 s).
_FLOAT, _INT, _ENUM, _STRING, _FLOAT_ARRAY, _INT_ARRAY, _NONE = (
    ValueType.FLOAT.value,
    ValueType.INT.value,
    ValueType.ENUM.value,
    ValueType.STRING.value,
    ValueType.FLOAT_ARRAY.value,
    ValueType.INT_ARRAY.value,
    ValueType.NONE.value,
)
_NO_VALUE = (_NONE, None, None, None)


class UnsupportedValue(ValueError):
    """A value SnapshotValue has no columns for (string arrays, unknown kinds)."""


def value_columns(kind: str, value, label: str | None = None) -> tuple[str, float | None, str | None, list | None]:
    """(value_type, *_num, *_str, *_array) for one value of an epics_io kind.

    Numbers go to the float column (EPICS integers are 32-bit, exact in a double); an enum keeps
    its index there and `label` in the text column.
    """
    if value is None:
        return _NO_VALUE
    if kind == epics_io.FLOAT:
        return _FLOAT, float(value), None, None
    if kind == epics_io.INT:
        return _INT, float(value), None, None
    if kind == epics_io.ENUM:
        return _ENUM, float(value), label, None
    if kind == epics_io.STRING:
        if not isinstance(value, str):
            raise UnsupportedValue("string arrays are not supported")
        return _STRING, None, value, None
    if kind == epics_io.FLOAT_ARRAY:
        return _FLOAT_ARRAY, None, None, list(value)
    if kind == epics_io.INT_ARRAY:
        return _INT_ARRAY, None, None, list(value)
    raise UnsupportedValue(f"unknown value kind {kind!r}")


def enum_label(labels: list[str] | None, index) -> str | None:
    """The label of enum `index`, None when the labels are unknown or too few."""
    if labels is None or not isinstance(index, int) or not 0 <= index < len(labels):
        return None
    return labels[index]


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
    labels = meta.enum_labels if meta is not None else None
    value_type, sp_num, sp_str, sp_array = _NO_VALUE
    status = severity = sp_time = None
    if setpoint is not None:
        try:
            label = enum_label(labels, setpoint.value) if setpoint.kind == epics_io.ENUM else None
            value_type, sp_num, sp_str, sp_array = value_columns(setpoint.kind, setpoint.value, label)
        except UnsupportedValue as error:
            reason = str(error)
        if value_type == _NONE:
            reason = reason or NO_VALUE
        else:
            status, severity, sp_time = setpoint.status, setpoint.severity, to_datetime(setpoint.timestamp)
    rb_type, rb_num, rb_str, rb_array = _NO_VALUE
    rb_status = rb_severity = rb_time = None
    if readback is not None:
        try:
            label = enum_label(labels, readback.value) if readback.kind == epics_io.ENUM else None
            rb_type, rb_num, rb_str, rb_array = value_columns(readback.kind, readback.value, label)
        except UnsupportedValue:
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
        labels,
        source,
        age,
        connected,
        "" if connected else reason,
    )


def reading_of(stored, *, readback: bool = False, received: float | None = None) -> epics_io.Reading | None:
    """A stored SnapshotValue's setpoint (or readback) as a Reading; None if it has no value.

    Enums come back as their index, as Channel Access gives them. `received` defaults to the
    IOC timestamp.
    """
    value = stored.readback_value if readback else stored.setpoint_value
    if value is None:
        return None
    moment = stored.readback_timestamp if readback else stored.timestamp
    timestamp = from_datetime(moment)
    return epics_io.Reading(
        address=stored.readback_name if readback else stored.pv_name,
        kind=stored.value_type,
        value=value,
        status=stored.readback_status if readback else stored.status,
        severity=stored.readback_severity if readback else stored.severity,
        timestamp=timestamp,
        received=timestamp if received is None else received,
    )


def display_value(
    value_type: str, value, *, enum_labels: list[str] | None = None, precision: int | None = None, units: str = ""
) -> str:
    """A saved value as text for a page, exactly as monitor.display shows live values, so that
    saved and live cells line up (precision, units, enum labels, shortened arrays); "" for none."""
    sample = LiveValue("", value_type, value, 0, 0, 0.0, 0.0, True)
    return display_text(sample, LiveMeta(units, precision, enum_labels, None, None, "", value_type, 0, True, True))
