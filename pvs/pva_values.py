"""pvAccess values: a p4p Value (raw, not unwrapped) as the project's one Value and its
channel's Metadata, and what a put writes into a channel's value field once the server has said
its type. No network here: pvs/pva_bulk.py, the only importer of p4p's client, calls these."""

from __future__ import annotations

import time

from pvs.epics_io import Metadata
from squirrel_site.epics_values import NT_ENUM, STRUCTURE, Value, kind_of_pva, structure_text

_HEADER_FIELDS = frozenset(("alarm", "timeStamp"))
NOT_WRITABLE = "not writable: a structure (kept as typed JSON) is saved and compared, never written"


# Conversion: a p4p Value (raw, not unwrapped) to the project's one Value.


def decode(address: str, raw, received: float | None = None) -> tuple[Value, Metadata]:
    """`raw` (a p4p Value of a normative type, or any structure) as a :class:`Value` and the
    channel's :class:`Metadata` (kind, count, units, precision, limits, enum labels)."""
    received = time.time() if received is None else received
    type_id = raw.getID()
    status, severity, timestamp = _header(raw)
    kind = kind_of_pva(type_id, _value_code(raw))
    meta = Metadata(address, kind, 1)
    if type_id.startswith(NT_ENUM):
        meta.enum_labels = list(raw["value.choices"])
        value = raw["value.index"]
    elif kind == STRUCTURE:
        value = _structure(raw, type_id)
    else:
        value = _plain(raw["value"])
        if isinstance(value, list):
            meta.count = len(value)
        _display(raw, meta)
    return Value(address, kind, value, status, severity, timestamp, received, True), meta


def decode_next(previous: Value, raw, received: float) -> Value:
    """A later update of a connected channel whose value read as `previous`: the same kind
    (pvAccess fixes a channel's type while it is connected), only the value and the alarm and
    timestamp read again (a fifth of :func:`decode`'s work: the display stays the metadata the
    first value brought)."""
    kind = previous.kind
    if kind == STRUCTURE:
        return decode(previous.address, raw, received)[0]
    status, severity, timestamp = _header(raw)
    value = raw["value.index"] if _is_enum(raw) else _plain(raw["value"])
    return Value(previous.address, kind, value, status, severity, timestamp, received, True)


def _is_enum(raw) -> bool:
    return raw.getID().startswith(NT_ENUM)


def _value_code(raw):
    """The p4p type code of `raw`'s value field (None if it has none)."""
    kind_of = raw.type()
    return kind_of["value"] if kind_of.has("value") else None


def _header(raw) -> tuple[int, int, float]:
    try:
        status, severity = raw["alarm.status"], raw["alarm.severity"]
    except (KeyError, AttributeError):
        status = severity = 0
    try:
        seconds, nanoseconds = raw["timeStamp.secondsPastEpoch"], raw["timeStamp.nanoseconds"]
    except (KeyError, AttributeError):
        seconds = nanoseconds = 0
    return status, severity, seconds + nanoseconds * 1e-9 if seconds else 0.0


def _plain(value):
    """A value field as plain Python: numpy arrays as lists, booleans as 0 or 1."""
    if hasattr(value, "tolist"):
        value = value.tolist()
        if value and isinstance(value[0], bool):
            return [int(item) for item in value]
        return value
    if isinstance(value, bool):
        return int(value)
    return value


def _display(raw, meta: Metadata) -> None:
    if not raw.type().has("display"):
        return
    display = raw.type()["display"]
    meta.units = raw["display.units"] if display.has("units") else ""
    if display.has("precision"):
        meta.precision = raw["display.precision"]
    if display.has("limitLow") and display.has("limitHigh"):
        low, high = raw["display.limitLow"], raw["display.limitHigh"]
        if low != high:
            meta.lower_limit, meta.upper_limit = float(low), float(high)


def _structure(raw, type_id: str) -> str:
    spec = raw.type().aspy()[2]
    fields = {name: _json_ready(raw[name]) for name, _ in spec if name not in _HEADER_FIELDS}
    kept = [_json_spec(item) for item in spec if item[0] not in _HEADER_FIELDS]
    return structure_text(type_id, kept, fields)


def _json_spec(item):
    if isinstance(item, tuple):
        return [_json_spec(part) for part in item]
    if isinstance(item, list):
        return [_json_spec(part) for part in item]
    return item


def _json_ready(value):
    if hasattr(value, "todict"):
        value = value.todict()
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_json_ready(item) for item in value]
    return value


# Writing: what a put sends, decided once the server says the channel's type.


def _builder(value, reached=None):
    """A p4p put builder writing `value` into the channel's value field (an NTEnum's index, or the
    index of a label among its choices); raises ValueError, saying why, where it cannot.
    `reached()` is called first: p4p calls a builder once the channel has connected."""

    def build(target) -> None:
        if reached is not None:
            reached()
        type_id = target.getID()
        if type_id.startswith(NT_ENUM):
            if isinstance(value, str):
                choices = list(target["value.choices"])
                if value not in choices:
                    raise ValueError(f"{value!r} is not one of the labels {choices}")
                target["value.index"] = choices.index(value)
            elif isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"cannot put {value!r} to an enum (an index or a label)")
            else:
                target["value.index"] = value
            return
        code = _value_code(target)
        if kind_of_pva(type_id, code) == STRUCTURE:
            raise ValueError(NOT_WRITABLE)
        if code.lstrip("a") != "s" and any(isinstance(item, str) for item in _items(value)):
            raise ValueError(f"cannot put {value!r} to a channel of numbers")
        target["value"] = value

    return build


def _items(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]
