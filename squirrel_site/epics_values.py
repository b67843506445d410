"""One EPICS value: the kinds, defined once, the value type, and one codec per medium.

Every app uses this module for what a value is and how it is written down; none keeps a list of
kinds or a converter of its own. Pure: no Django models, no Redis, no Channel Access library
(``pvs.epics_bulk`` is the only importer of ``epics``; the DBR type numbers below are the
protocol's).

The kinds (:class:`Kind`) and what each one is made of (:data:`SPECS`):

==============  ========================  ==================  ==========================
kind            Python value              PostgreSQL columns  compared
==============  ========================  ==================  ==========================
float           float                     ``*_num``           within tolerance
int             int                       ``*_num``           within tolerance
enum            int (the index)           ``*_num`` + label   by index (``enum``)
string          str                       ``*_str``           exactly
float_array     list[float]               ``*_array``         element by element, tol.
int_array       list[int]                 ``*_array``         element by element, tol.
string_array    list[str]                 ``*_str`` (JSON)    element by element, exactly
structure       str (typed JSON text)     ``*_str``           an NTTable column by column
                                                              (numbers within tolerance),
                                                              other structures exactly
==============  ========================  ==================  ==========================

``none`` (:data:`NO_VALUE`) is the stored kind of a PV without a value (disconnected).

The media, one codec each:

- Redis (the monitor's live values): :func:`pack` / :func:`unpack`, a msgpack list;
- PostgreSQL (snapshot values, restore items): :func:`to_columns` (a value of its own kind, strict)
  and :func:`fit_columns` (a live value in a saved value's columns, lenient), back with
  :func:`from_columns`;
- API JSON and the pages' ``data-saved``: :func:`to_json` (non-finite numbers as strings);
- display text (pages, live tables, CSV): :func:`display_text`, :func:`number_text`,
  :func:`delta_text`;
- Channel Access: :func:`kind_of_native` (what a channel's DBR type and count read as) and
  :func:`put_buffer` (the DBR type, count and bytes a put sends);
- the Archiver Appliance's JSON: :func:`kind_of_archived` and :func:`archived_value`;
- pvAccess: :func:`kind_of_pva` (what a normative type's value field reads as; any other
  structure is a ``structure``, its typed JSON text, :func:`structure_text`);
- the browser (``static/squirrel/live.js``): :func:`js_module` renders ``static/squirrel/kinds.js``
  (``python manage.py write_kinds_js``; a test fails when the file is stale).

Every decision that depends on a kind, in this module and in the apps, reads the kind's
:class:`KindSpec` (its columns, element type, comparison category, whether it is labelled),
never its name; derived sets are computed from :data:`SPECS` when asked (:func:`kinds`), so a kind
made of parts that exist is one entry in :data:`SPECS` (squirrel_site/tests/test_value_kinds.py
registers two at test time, and fails on a kind's name tested outside this module). See
docs/development.md, "Adding a value kind".
"""

from __future__ import annotations

import json
import math
import numbers
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import msgpack


class Kind(StrEnum):
    """What an EPICS value is."""

    FLOAT = "float"
    INT = "int"
    ENUM = "enum"
    STRING = "string"
    FLOAT_ARRAY = "float_array"
    INT_ARRAY = "int_array"
    STRING_ARRAY = "string_array"  # a DBF_STRING waveform (aai/waveform of FTVL STRING)
    STRUCTURE = "structure"  # a pvAccess structure of no other kind (NTTable, ...): typed JSON text


NO_VALUE = "none"  # the stored kind of a PV without a value

# Columns a kind is stored in (KindSpec.column).
NUM, STR, ARRAY = "num", "str", "array"
# How two values of a kind compare (KindSpec.compare): the categories snapshots.comparison.rules,
# its SQL and static/squirrel/live.js each have one rule for.
NUMBER, NUMBER_ARRAY, ENUM, EXACT, EXACT_ARRAY = "number", "number_array", "enum", "exact", "exact_array"
# A pvAccess structure as typed JSON text (structure_text): an NTTable column by column, element by
# element; any other structure field by field, exactly. Its display is a table, not JSON
# (display_text).
STRUCT = "structure"
COMPARE_CATEGORIES = (NUMBER, NUMBER_ARRAY, ENUM, EXACT, EXACT_ARRAY, STRUCT)


@dataclass(frozen=True)
class KindSpec:
    """What a kind is made of: its label, element type, columns, comparison and display.

    Every decision that depends on a value's kind, here and in the apps, reads these attributes
    (through :func:`spec_of`, :func:`kinds` or :func:`saved_label`), never a kind's name: a kind
    made of parts that exist is one entry in :data:`SPECS`.
    """

    kind: str  # a Kind value
    label: str
    element: type  # float, int or str: the type of the value (of each element of an array)
    array: bool
    column: str  # NUM, STR or ARRAY
    compare: str  # one of COMPARE_CATEGORIES
    labelled: bool = False  # an index shown as its label (an enum): the label in the text column
    # Whether a restore writes it: a structure is saved and compared, never written (a put would
    # have to rebuild every field of a type the server alone defines).
    writable: bool = True

    @property
    def units(self) -> bool:
        """Whether its display text ends with the channel's units (not for text or labels)."""
        return self.element is not str and not self.labelled


SPECS: dict[str, KindSpec] = {
    str(spec.kind): spec
    for spec in (
        KindSpec(Kind.FLOAT, "Floating point", float, False, NUM, NUMBER),
        KindSpec(Kind.INT, "Integer", int, False, NUM, NUMBER),
        KindSpec(Kind.ENUM, "Enum (index and label)", int, False, NUM, ENUM, labelled=True),
        KindSpec(Kind.STRING, "String", str, False, STR, EXACT),
        KindSpec(Kind.FLOAT_ARRAY, "Array of floats", float, True, ARRAY, NUMBER_ARRAY),
        KindSpec(Kind.INT_ARRAY, "Array of integers", int, True, ARRAY, NUMBER_ARRAY),
        KindSpec(Kind.STRING_ARRAY, "Array of strings", str, True, STR, EXACT_ARRAY),
        KindSpec(Kind.STRUCTURE, "Structure (typed JSON)", str, False, STR, STRUCT, writable=False),
    )
}
NO_VALUE_LABEL = "No value (disconnected)"
_INT, _FLOAT, _STRING, _ENUM = Kind.INT.value, Kind.FLOAT.value, Kind.STRING.value, Kind.ENUM.value
_FLOAT_ARRAY, _INT_ARRAY, _STRING_ARRAY = Kind.FLOAT_ARRAY.value, Kind.INT_ARRAY.value, Kind.STRING_ARRAY.value
_NO_COLUMNS = (NO_VALUE, None, None, None)


def spec_of(kind: str) -> KindSpec | None:
    """The spec of `kind`; None for ``none`` and kinds this module does not know."""
    return SPECS.get(kind)


def kinds(**attributes) -> frozenset[str]:
    """The kinds whose spec has every one of `attributes` (e.g. ``kinds(compare=NUMBER)``),
    read from :data:`SPECS` at each call: the SQL lists its categories' kinds with it."""
    return frozenset(
        kind
        for kind, spec in SPECS.items()
        if all(getattr(spec, name) == wanted for name, wanted in attributes.items())
    )


def compare_of(kind: str) -> str | None:
    """How values of `kind` compare (one of COMPARE_CATEGORIES); None for an unknown kind."""
    spec = SPECS.get(kind)
    return None if spec is None else spec.compare


def is_labelled(kind: str) -> bool:
    """Whether values of `kind` are indexes shown as labels (an enum's)."""
    spec = SPECS.get(kind)
    return spec is not None and spec.labelled


def is_writable(kind: str) -> bool:
    """Whether a restore may write values of `kind` (True for a kind this module does not know:
    whether it can be written is then the channel's to say)."""
    spec = SPECS.get(kind)
    return spec is None or spec.writable


def saved_label(kind: str, text: str | None) -> str | None:
    """The label a labelled kind (an enum) keeps in its text column; None for other kinds."""
    spec = SPECS.get(kind)
    return text if spec is not None and spec.labelled else None


def choices() -> list[tuple[str, str]]:
    """(value, label) of every stored kind, `none` last: a model field's choices."""
    return [(kind, spec.label) for kind, spec in SPECS.items()] + [(NO_VALUE, NO_VALUE_LABEL)]


# The value.


@dataclass(slots=True)
class Value:
    """One value of one address: what Channel Access delivered, the monitor keeps in Redis, a
    snapshot saves, a comparison compares and a restore puts back.

    `connected` is False for an address the monitor knows but whose channel is down (the value is
    then the last one it had, or None).
    """

    address: str
    kind: str  # a Kind value
    value: float | int | str | list | None
    status: int = 0
    severity: int = 0
    timestamp: float = 0.0  # IOC time, Unix seconds; 0.0 when the record never processed
    received: float = 0.0  # this host's clock, Unix seconds
    connected: bool = True


class UnsupportedValue(ValueError):
    """A value that does not fit its kind (or a kind this module does not know)."""


# Redis: a msgpack list, no field names (JSON costs 0.3-0.5 s per 50,000 values). The address is
# the hash field, so it is left out.


def pack(v: Value) -> bytes:
    """`v` as msgpack: [kind, value, status, severity, timestamp, received, connected]."""
    return msgpack.packb([v.kind, v.value, v.status, v.severity, v.timestamp, v.received, v.connected])


def unpack(address: str, raw: bytes) -> Value:
    """What :func:`pack` packed."""
    return Value(address, *msgpack.unpackb(raw))


# PostgreSQL columns: (value_type, num, str, array); an enum keeps its index in num and its label
# in str; a string array is a JSON list in str (compact, so equal arrays are equal texts).


def to_columns(kind: str, value, label: str | None = None) -> tuple[str, float | None, str | None, list | None]:
    """(value_type, num, str, array) for `value` of `kind`, as Channel Access delivered it.

    Numbers go to the float column (EPICS integers are 32-bit, exact in a double); an enum's
    `label` goes to the text column. No value: (``none``, None, None, None). Raises
    :class:`UnsupportedValue` for a value that is not of its kind, or a kind not in :data:`SPECS`.
    """
    if value is None:
        return _NO_COLUMNS
    spec = SPECS.get(kind)
    if spec is None:
        raise UnsupportedValue(f"unknown value kind {kind!r}")
    if spec.column == NUM:
        return kind, float(value), label if spec.labelled else None, None
    if spec.column == ARRAY:
        return kind, None, None, list(value)
    if spec.array:
        return kind, None, _strings_text(value), None
    if not isinstance(value, str):
        raise UnsupportedValue("string arrays are not supported")
    return kind, None, value, None


def fit_columns(kind: str, value) -> tuple[float | None, str | None, list | None]:
    """(num, str, array) of a live `value` in the columns of a saved value of `kind`, converted
    where it fits (a one-element array as a number, a number as a one-element array, anything as
    text); all None where it does not."""
    spec = SPECS.get(kind)
    if value is None or spec is None:
        return None, None, None
    try:
        if spec.column == ARRAY:
            return None, None, [float(x) for x in _as_list(value)]
        if spec.column == NUM:
            return float(value[0] if isinstance(value, (list, tuple)) and len(value) == 1 else value), None, None
        if spec.array:
            return None, _strings_text(value), None
        return None, str(value), None
    except (TypeError, ValueError):
        return None, None, None


def from_columns(kind: str, num, text, arr):
    """A value's columns as Python: float, int (an enum's index), str or list; None if none."""
    spec = SPECS.get(kind)
    if spec is None:
        return None
    if spec.column == NUM:
        if spec.element is int:
            return None if num is None else int(num)
        return arr if arr is not None else num  # a float saved before arrays had a kind of their own
    if spec.column == ARRAY:
        if arr is None or spec.element is float:
            return arr
        return [int(x) for x in arr]
    if spec.array:
        return None if text is None else json.loads(text)
    return text


def _strings_text(value) -> str:
    items = _as_list(value)
    if not all(isinstance(item, str) for item in items):
        raise UnsupportedValue("a string array holds text only")
    return json.dumps(items, ensure_ascii=False, separators=(",", ":"))


def _as_list(value) -> list:
    """A one-element waveform can arrive as a scalar."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        return [value]
    return list(value)


def as_list(value) -> list:
    """`value` as a list of elements (a scalar is a one-element array)."""
    return _as_list(value)


# API JSON: strict JSON has no literal for NaN or the infinities.


def to_json(value):
    """`value` with non-finite floats (also inside lists) spelled "NaN", "Infinity", "-Infinity"."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, list):
        return [to_json(item) for item in value]
    return value


# Display text: numbers with the record's precision (PREC) when the channel reported one, else 6
# significant digits like `caget`; units after a space; enums as their label (the index when there
# is no label for it); long strings and arrays shortened.

ARRAY_ITEMS_SHOWN = 5
STRING_CHARS_SHOWN = 80
# Beyond these, fixed-point text gets absurd (PREC 3 of 1e300 is 300 digits): use exponents.
MAX_PRECISION = 17
FIXED_POINT_LIMIT = 1e15


def _fixed_point(precision: int) -> Callable[[float], str]:
    """number_text(x, precision) of a finite float x below FIXED_POINT_LIMIT: `precision`
    decimals, but a number other than 0 that they would show as zeros (3e-9 Torr with PREC 2 as
    "0.00") in the exponent form with as many decimals ("3.00e-09")."""
    fixed, exponent = f"{{:.{precision}f}}".format, f"{{:.{precision}e}}".format
    smallest = float(f"1e-{precision}")  # (live.js: Number(`1e-${precision}`), the same float)

    def text(x: float) -> str:
        shown = fixed(x)
        if x and -smallest < x < smallest and not shown.strip("-0."):  # only zeros, for a number not 0
            return exponent(x)
        return shown

    return text


class _NumberFormats(dict):
    """precision -> the function number_text writes a finite float below FIXED_POINT_LIMIT with:
    fixed-point with that many decimals (tiny numbers in the exponent form, see _fixed_point);
    6 significant digits for None or a precision out of range."""

    def __missing__(self, precision):
        return _GENERAL_FORMAT


_GENERAL_FORMAT = "{:.6g}".format
# Made once: a code path writing hundreds of thousands of numbers (the N-way CSV export) looks its
# format up here, the same number_text uses, instead of calling number_text for each.
NUMBER_FORMATS = _NumberFormats(
    {None: _GENERAL_FORMAT} | {precision: _fixed_point(precision) for precision in range(MAX_PRECISION + 1)}
)


def enum_label(labels: Sequence[str] | None, index) -> str | None:
    """The label of enum `index`, None when the labels are unknown or too few."""
    if not labels or isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(labels):
        return None
    return labels[index]


def display_text(
    kind: str,
    value,
    *,
    units: str = "",
    precision: int | None = None,
    enum_labels: Sequence[str] | None = None,
    full: bool = False,
) -> str:
    """`value` of `kind` as a table cell shows it ("" for no value); `full` writes arrays and
    strings whole (CSV)."""
    if value is None:
        return ""
    spec = SPECS.get(kind)
    if spec is not None and spec.compare == STRUCT:
        return structure_display(value, full=full)
    if spec is not None and spec.labelled:
        label = enum_label(enum_labels, value)
        return label if label is not None else str(value)
    if spec is not None and spec.element is str and not spec.array:
        return str(value) if full else _shortened(str(value), STRING_CHARS_SHOWN)
    if isinstance(value, list):
        if spec is not None and spec.element is str:
            texts = [json.dumps(item, ensure_ascii=False) for item in value]
        else:
            texts = [number_text(item, precision) for item in value]
        shown = texts if full else texts[:ARRAY_ITEMS_SHOWN]
        more = f", … ({len(value)} values)" if len(shown) < len(value) else ""
        text = f"[{', '.join(shown)}{more}]"
    else:
        text = number_text(value, precision)
    return f"{text} {units}" if units and (spec is None or spec.units) else text


def text_of(value, meta=None) -> str:
    """A :class:`Value` (anything with `kind` and `value`) as a table cell shows it, with the
    `units`, `precision` and `enum_labels` of `meta` (a channel's metadata, or None); "" for none."""
    if value is None or value.value is None:
        return ""
    if meta is None:
        return display_text(value.kind, value.value)
    return display_text(
        value.kind, value.value, units=meta.units, precision=meta.precision, enum_labels=meta.enum_labels
    )


def label_of(value, meta=None) -> str | None:
    """The label of an enum value's index (None: not an enum, no labels, index out of range)."""
    spec = SPECS.get(value.kind)
    if spec is None or not spec.labelled or meta is None:
        return None
    return enum_label(meta.enum_labels, value.value)


def number_text(number, precision: int | None = None) -> str:
    """One number: fixed-point with `precision` decimals if given (the exponent form, with as many
    decimals, beyond FIXED_POINT_LIMIT and for a number other than 0 that would show as zeros: 3e-9
    with precision 2 is "3.00e-09", 0.006 "0.01"), else 6 significant digits; live.js's numberText
    does the same."""
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        return str(number)
    if isinstance(number, int):
        return str(number)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    if precision is None or not 0 <= precision <= MAX_PRECISION:
        return _GENERAL_FORMAT(number)
    if abs(number) >= FIXED_POINT_LIMIT:
        return f"{number:.{precision}e}"
    return NUMBER_FORMATS[precision](number)


def delta_text(delta, precision: int | None = None, units: str = "") -> str:
    """A difference as every page shows it: :func:`number_text` with "+" before a positive one,
    then the units ("+0.50 mA", "-2", "0.00", "NaN"); live.js's deltaText does the same in the
    browser."""
    text = number_text(delta, precision)
    if isinstance(delta, (int, float)) and not isinstance(delta, bool) and delta > 0:
        text = f"+{text}"
    return f"{text} {units}" if units else text


def _shortened(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Channel Access: the DBR types (db_access.h) and what each reads as and is written with.

DBR_STRING, DBR_SHORT, DBR_FLOAT, DBR_ENUM, DBR_CHAR, DBR_LONG, DBR_DOUBLE = range(7)
MAX_STRING_SIZE = 40  # bytes of a DBR_STRING element, with its terminating NUL
# (array typecode, scalar kind, array kind) per native numeric type.
NATIVE_LAYOUT = {
    DBR_SHORT: ("h", _INT, _INT_ARRAY),
    DBR_FLOAT: ("f", _FLOAT, _FLOAT_ARRAY),
    DBR_ENUM: ("H", _ENUM, _INT_ARRAY),
    DBR_CHAR: ("B", _INT, _INT_ARRAY),
    DBR_LONG: ("i", _INT, _INT_ARRAY),
    DBR_DOUBLE: ("d", _FLOAT, _FLOAT_ARRAY),
}
# What a put sends for each native numeric type: DBR type and array typecode.
PUT_LAYOUT = {
    DBR_DOUBLE: (DBR_DOUBLE, "d"),
    DBR_FLOAT: (DBR_DOUBLE, "d"),
    DBR_LONG: (DBR_LONG, "i"),
    DBR_SHORT: (DBR_LONG, "i"),
    DBR_CHAR: (DBR_LONG, "i"),
    DBR_ENUM: (DBR_ENUM, "H"),
}


def kind_of_native(native: int, count: int) -> str:
    """The kind a channel of DBR type `native` and `count` elements reads as."""
    if native == DBR_STRING:
        return _STRING if count <= 1 else _STRING_ARRAY
    return NATIVE_LAYOUT[native][1 if count == 1 else 2]


def put_buffer(native: int, element_count: int, value, enum_labels: list[str] | None = None) -> tuple[int, int, bytes]:
    """(DBR type, element count, buffer) to put `value` to a channel of `native` type.

    Enum labels become their index when the labels are known, else they go as DBR_STRING and the
    IOC matches them. Raises ValueError, saying why, for a value the channel cannot take.
    """
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if not values or len(values) > max(element_count, 1):
        raise ValueError(f"{len(values)} values for a channel of {element_count} elements")
    if native == DBR_ENUM and any(isinstance(v, str) for v in values):
        if enum_labels is None:
            return _string_buffer(values)
        unknown = [v for v in values if v not in enum_labels]
        if unknown:
            raise ValueError(f"{unknown[0]!r} is not one of the labels {enum_labels}")
        values = [enum_labels.index(v) for v in values]
    if native == DBR_STRING:
        return _string_buffer(values)
    if native not in PUT_LAYOUT:
        raise ValueError(f"cannot put to a channel of DBR type {native}")
    dbr_type, typecode = PUT_LAYOUT[native]
    for v in values:
        if not isinstance(v, numbers.Real) or (typecode != "d" and not float(v).is_integer()):
            raise ValueError(f"cannot put {v!r} to a channel of {'numbers' if typecode == 'd' else 'integers'}")
    try:
        data = array(typecode, [float(v) if typecode == "d" else int(v) for v in values]).tobytes()
    except OverflowError:
        raise ValueError(f"{value!r} is out of range for the channel") from None
    return dbr_type, len(values), data


def _string_buffer(values: list) -> tuple[int, int, bytes]:
    encoded = []
    for v in values:
        if not isinstance(v, str):
            raise ValueError(f"cannot put {v!r} to a channel of strings")
        raw = v.encode()
        if len(raw) >= MAX_STRING_SIZE:
            raise ValueError(f"{v!r} is longer than {MAX_STRING_SIZE - 1} bytes")
        encoded.append(raw.ljust(MAX_STRING_SIZE, b"\0"))
    return DBR_STRING, len(encoded), b"".join(encoded)


# pvAccess: the normative types' value fields (p4p type codes: "d" double, "ai" array of int32...).

_PVA_FLOAT_CODES = frozenset("fd")
_PVA_INT_CODES = frozenset("?bBhHiIlL")  # a boolean reads as 0 or 1


NT_SCALAR, NT_SCALAR_ARRAY, NT_ENUM = "epics:nt/NTScalar:", "epics:nt/NTScalarArray:", "epics:nt/NTEnum:"
STRUCTURE = Kind.STRUCTURE.value  # what a pvAccess structure of no other kind reads as


def kind_of_pva(type_id: str, value_code) -> str:
    """The kind a pvAccess value of normative type `type_id` reads as, `value_code` the p4p type
    code of its value field ("d", "ai", ...; anything else for a structured value field): an
    NTEnum is an enum, an NTScalar or NTScalarArray the kind of its value field, anything else
    (NTTable, ...) a :data:`STRUCTURE`, kept as its typed JSON text (:func:`structure_text`)."""
    if type_id.startswith(NT_ENUM):
        return _ENUM
    if not type_id.startswith((NT_SCALAR, NT_SCALAR_ARRAY)) or not isinstance(value_code, str):
        return STRUCTURE
    array = value_code.startswith("a")
    element = value_code[1:] if array else value_code
    if element in _PVA_FLOAT_CODES:
        return _FLOAT_ARRAY if array else _FLOAT
    if element in _PVA_INT_CODES:
        return _INT_ARRAY if array else _INT
    if element == "s":
        return Kind.STRING_ARRAY.value if array else _STRING
    return STRUCTURE


# The Archiver Appliance's JSON (pvs.archiver): a sample's "val" is a number, a string or a list of
# either, an enum's index as a number; no type travels with getDataAtTime's answer.


def kind_of_archived(val, hint: str | None = None) -> str | None:
    """The kind an archived sample's JSON `val` reads as: `hint` (the channel's kind, as its
    metadata says, e.g. the monitor's) when `val` fits it, else its JSON shape — a string, a list
    of strings, a whole number an int, another number a float, a list of whole numbers an int
    array, another list of numbers a float array. None for a value of no kind (null, an object,
    a list mixing strings and numbers)."""
    shape = _archived_shape(val)
    if shape is None:
        return None
    spec = SPECS.get(hint) if hint else None
    if spec is not None and spec.kind != STRUCTURE and _fits(spec, shape):
        return hint
    return shape


def _archived_shape(val) -> str | None:
    if isinstance(val, str):
        return _STRING
    if isinstance(val, bool) or val is None:
        return _INT if isinstance(val, bool) else None
    if isinstance(val, int):
        return _INT
    if isinstance(val, float):
        return _FLOAT
    if isinstance(val, list):
        if all(isinstance(item, str) for item in val) and val:
            return _STRING_ARRAY
        if not all(isinstance(item, numbers.Real) for item in val):
            return None
        return _INT_ARRAY if all(isinstance(item, int) for item in val) else _FLOAT_ARRAY
    return None


def _fits(spec: KindSpec, shape: str) -> bool:
    """Whether a value of JSON shape `shape` can be a value of `spec`'s kind (an int an enum's
    index or a float; one number a one-element array; a whole-number array a float array)."""
    shaped = SPECS[shape]
    if spec.array != shaped.array and not (spec.array and not shaped.array):
        return False
    if spec.element is str or shaped.element is str:
        return spec.element is shaped.element
    return spec.element is float or shaped.element is int


def archived_value(val, kind: str):
    """An archived sample's JSON `val` as a Python value of `kind` (:func:`kind_of_archived`): a
    number where an array is expected becomes a one-element list, numbers become their kind's
    element type (an enum's index an int)."""
    spec = SPECS[kind]
    element = spec.element
    if spec.array:
        items = val if isinstance(val, list) else [val]
        return [element(item) for item in items]
    return element(val)


def structure_text(type_id: str, type_spec, fields: dict) -> str:
    """A structure as typed JSON text (a ``structure`` kind's value): its type id, its type (p4p's
    ``Type.aspy()`` spec as lists) and its fields (arrays as lists), compact, so equal structures
    are equal texts. Strict JSON: non-finite numbers are the strings "NaN", "Infinity" and
    "-Infinity" (as :func:`to_json` writes them), which :func:`number_of` reads back."""
    document = {"id": type_id, "type": type_spec, "value": _finite_json(fields)}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _finite_json(value):
    if isinstance(value, float) and not math.isfinite(value):
        return to_json(value)
    if isinstance(value, dict):
        return {key: _finite_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_json(item) for item in value]
    return value


# Structures read back: what comparisons and the display text need of the typed JSON text.

NT_TABLE = "epics:nt/NTTable:"
# p4p element codes of NTTable columns compared within tolerance; "?" (boolean) and "s" are exact.
_TOLERANT_CODES = frozenset("bBhHiIlLfd")
NON_FINITE = ("NaN", "Infinity", "-Infinity")
STRUCTURE_CHARS_SHOWN = 240


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def parse_structure(text) -> dict | None:
    """A structure's typed JSON text (:func:`structure_text`) as a dict with its "value" fields;
    None for text that is not strict JSON of that shape (then compared and shown as text)."""
    if not isinstance(text, str):
        return None
    try:
        parsed = json.loads(text, parse_constant=_no_constant)
    except ValueError:
        return None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("value"), dict):
        return None
    return parsed


@dataclass(frozen=True)
class Table:
    """An NTTable read from its typed JSON: its columns in order (name, p4p type code such as
    "ad"), each column's elements, and everything else (id, type, labels, descriptor)."""

    columns: tuple[tuple[str, str], ...]
    data: dict[str, list]
    rest: dict

    @property
    def rows(self) -> int:
        return max((len(items) for items in self.data.values()), default=0)

    def tolerant(self, column: str) -> bool:
        """Whether `column` holds numbers compared within the PV's tolerance."""
        code = dict(self.columns)[column]
        return code.startswith("a") and code[1:] in _TOLERANT_CODES


def table_of(parsed: dict | None) -> Table | None:
    """The NTTable of a :func:`parse_structure` result; None for another structure (or an NTTable
    whose type does not name its columns, or whose columns are not lists)."""
    if parsed is None or not str(parsed.get("id", "")).startswith(NT_TABLE):
        return None
    spec = next(
        (
            item[1]
            for item in parsed.get("type") or []
            if isinstance(item, list) and len(item) == 2 and item[0] == "value"
        ),
        None,
    )
    if not (isinstance(spec, list) and len(spec) == 3 and isinstance(spec[2], list)):
        return None
    columns = []
    for item in spec[2]:
        if not (isinstance(item, list) and len(item) == 2 and all(isinstance(part, str) for part in item)):
            return None
        columns.append((item[0], item[1]))
    data = parsed["value"].get("value")
    names = [name for name, _ in columns]
    if not isinstance(data, dict) or sorted(data) != sorted(names) or len(set(names)) != len(names):
        return None
    if not all(isinstance(data[name], list) for name in names):
        return None
    rest = {key: item for key, item in parsed.items() if key != "value"}
    rest["value"] = {key: item for key, item in parsed["value"].items() if key != "value"}
    return Table(tuple(columns), data, rest)


def number_of(element) -> float | None:
    """A JSON element as a number (the strings "NaN", "Infinity", "-Infinity" too); None if it is
    not one (a boolean is not a number here)."""
    if isinstance(element, bool):
        return None
    if isinstance(element, (int, float)):
        try:
            return float(element)
        except OverflowError:
            return None
    if element in NON_FINITE:
        return float(element.replace("Infinity", "inf"))
    return None


def json_equal(x, y) -> bool:
    """Equality of two JSON values as JavaScript sees them parsed: numbers by value, a boolean
    never a number, objects by their keys' values whatever their order."""
    if isinstance(x, bool) or isinstance(y, bool):
        return isinstance(x, bool) and isinstance(y, bool) and x == y
    if isinstance(x, (int, float)) and isinstance(y, (int, float)):
        return x == y
    if isinstance(x, list) and isinstance(y, list):
        return len(x) == len(y) and all(json_equal(a, b) for a, b in zip(x, y, strict=True))
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(json_equal(x[key], y[key]) for key in x)
    return type(x) is type(y) and x == y


def structure_display(text, full: bool = False) -> str:
    """A structure as a table cell shows it: an NTTable as its size and its columns
    ("table 4×2: device ["MAG01", "MAG02", …], setpoint [1.5, 2.25, …]"), another structure as
    its fields ("{x=1.5, name="a"}"); text that is not typed JSON as itself. Shortened unless
    `full` (CSV)."""
    parsed = parse_structure(text)
    if parsed is None:
        shown = str(text)
    else:
        table = table_of(parsed)
        if table is not None:
            columns = ", ".join(
                f"{name} {_items_text(table.data[name], full, table.tolerant(name))}" for name, _ in table.columns
            )
            shown = f"table {table.rows}×{len(table.columns)}: {columns}"
        else:
            shown = _field_text(parsed["value"], full)
    return shown if full else _shortened(shown, STRUCTURE_CHARS_SHOWN)


def element_text(element, numbers: bool = False) -> str:
    """One element of a structure as the display shows it (`numbers`: of a number column)."""
    return _field_text(element, False, numbers)


def _items_text(items: list, full: bool, numbers: bool = False) -> str:
    shown = items if full else items[:ARRAY_ITEMS_SHOWN]
    more = f", … ({len(items)} values)" if len(shown) < len(items) else ""
    return "[" + ", ".join(_field_text(item, full, numbers) for item in shown) + more + "]"


def _field_text(value, full: bool, numbers: bool = False) -> str:
    if numbers and number_of(value) is not None:
        return number_text(number_of(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return number_text(value)
    if value is None:
        return "null"
    if isinstance(value, list):
        return _items_text(value, full)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}={_field_text(item, full)}" for key, item in value.items()) + "}"
    return json.dumps(value, ensure_ascii=False)


# The browser: static/squirrel/kinds.js, generated from SPECS.

JS_MODULE_PATH = "static/squirrel/kinds.js"


def js_module() -> str:
    """The text of static/squirrel/kinds.js: each kind's comparison, for live.js."""
    compare = {kind: spec.compare for kind, spec in SPECS.items()}
    return (
        "// Generated from squirrel_site/epics_values.py by `python manage.py write_kinds_js`: do not edit.\n"
        "// How each value kind compares (squirrel_site/epics_values.py, KindSpec.compare).\n"
        f"export const COMPARE = Object.freeze({json.dumps(compare, indent=2)});\n"
    )
