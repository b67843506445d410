"""Live values as text, the way pages show them: one function, shared by pages and WebSockets.

Pure: no Redis, no database. Numbers use the record's precision (PREC) when the channel reported
one, else 6 significant digits like `caget`; units follow after a space; enums show their label
(the index when there is no label for it); long strings and arrays are shortened.
"""

from __future__ import annotations

import math

from monitor.live import LiveMeta, LiveValue

ARRAY_ITEMS_SHOWN = 5
STRING_CHARS_SHOWN = 80
# Beyond these, fixed-point text gets absurd (PREC 3 of 1e300 is 300 digits): use exponents.
MAX_PRECISION = 17
FIXED_POINT_LIMIT = 1e15


def enum_label(value: LiveValue, meta: LiveMeta | None) -> str | None:
    """The label of an enum value's index, or None (not an enum, no labels, index out of range)."""
    if value.kind != "enum" or meta is None or not meta.enum_labels or not isinstance(value.value, int):
        return None
    return meta.enum_labels[value.value] if 0 <= value.value < len(meta.enum_labels) else None


def display_text(value: LiveValue | None, meta: LiveMeta | None) -> str:
    """`value` as shown in a table cell; "" when there is no value (never connected, unknown)."""
    if value is None or value.value is None:
        return ""
    if value.kind == "enum":
        label = enum_label(value, meta)
        return label if label is not None else str(value.value)
    if value.kind == "string":
        return _shortened(str(value.value), STRING_CHARS_SHOWN)
    precision = meta.precision if meta is not None else None
    units = meta.units if meta is not None else ""
    if isinstance(value.value, list):
        items = value.value
        shown = ", ".join(number_text(item, precision) for item in items[:ARRAY_ITEMS_SHOWN])
        more = f", … ({len(items)} values)" if len(items) > ARRAY_ITEMS_SHOWN else ""
        text = f"[{shown}{more}]"
    else:
        text = number_text(value.value, precision)
    return f"{text} {units}" if units else text


def number_text(number, precision: int | None = None) -> str:
    """One number: fixed-point with `precision` decimals if given, else 6 significant digits."""
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        return str(number)
    if isinstance(number, int):
        return str(number)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    if precision is None or not 0 <= precision <= MAX_PRECISION:
        return f"{number:.6g}"
    if abs(number) >= FIXED_POINT_LIMIT:
        return f"{number:.{precision}e}"
    return f"{number:.{precision}f}"


def _shortened(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
