"""Comparing saved and live values: pure functions, no database, no Redis, no Channel Access.

Kinds are squirrel_site.epics_values' (each kind's ``compare`` says which rule applies).
Numbers match when ``|live - saved| <= max(abs_tolerance,
rel_tolerance * |saved|)``; arrays match element by element and only at equal length; strings
and enums (by index) match only exactly, arrays of strings element by element, exactly.
A pvAccess structure (typed JSON text) matches an equal text; an NTTable also matches one with the
same columns (names and types, in order), the same row count and the same other fields whose
number columns match element by element within the tolerances and whose other columns are equal
(:func:`structures_within`); any other structure matches field by field, exactly.
``None`` (no value, disconnected) never matches.

NaN: two NaNs count as equal (a record that reads NaN and was saved as NaN has not changed);
NaN against a number never matches. Infinities match only the same infinity.

A row of a comparison (snapshot against snapshot or against live values) gets one
:class:`ComparisonStatus` from :func:`comparison_status`. snapshots.comparison.rows computes the same
statuses in SQL for snapshot pairs; its tests check the two agree.
"""

from __future__ import annotations

import json
import math
from typing import Protocol

from django.db import models

from squirrel_site import epics_values as ev

# One rule per category of squirrel_site.epics_values.KindSpec.compare, never per kind: a kind
# is compared by the rule of its spec's category (ev.compare_of).
NUMBER, NUMBER_ARRAY, ENUM, EXACT, EXACT_ARRAY = ev.NUMBER, ev.NUMBER_ARRAY, ev.ENUM, ev.EXACT, ev.EXACT_ARRAY
STRUCT = ev.STRUCT
_SPECS = ev.SPECS  # read at each call (50,000 a comparison: a dict lookup, no function call)
_NO_SPEC = ev.KindSpec("", "", object, False, "", "")  # an unknown kind's: no category


class ComparisonStatus(models.TextChoices):
    """How one PV's value in `a` (saved) compares with `b` (another snapshot, or live)."""

    OUT_OF_TOLERANCE = "out_of_tolerance", "Out of tolerance"
    TYPE_CHANGED = "type_changed", "Type changed"
    DISCONNECTED = "disconnected", "Disconnected"
    ONLY_IN_A = "only_in_a", "Only in A"
    ONLY_IN_B = "only_in_b", "Only in B"
    WITHIN = "within", "Within tolerance"
    EQUAL = "equal", "Equal"


# Statuses that are not differences (what "differences only" hides).
MATCHING_STATUSES = frozenset({ComparisonStatus.EQUAL, ComparisonStatus.WITHIN})
# Sorting by status puts what needs attention first: the order of ComparisonStatus.
STATUS_RANK = {status.value: rank for rank, status in enumerate(ComparisonStatus)}


class Sample(Protocol):
    """One side of a comparison row: a squirrel_site.epics_values.Value has this shape."""

    kind: str
    value: object
    connected: bool


def numbers_within_tolerance(saved: float, live: float, abs_tolerance: float = 0.0, rel_tolerance: float = 0.0) -> bool:
    """True if two numbers are equal within max(abs_tolerance, rel_tolerance * |saved|)."""
    if saved is None or live is None:
        return False
    if math.isnan(saved) or math.isnan(live):
        return math.isnan(saved) and math.isnan(live)
    if math.isinf(saved) or math.isinf(live):
        return saved == live
    return abs(live - saved) <= max(abs_tolerance, rel_tolerance * abs(saved))


def within_tolerance(saved, live, kind: str, abs_tolerance: float = 0.0, rel_tolerance: float = 0.0) -> bool:
    """True if `live` matches `saved` for a PV of `kind` with the given tolerances.

    A live value of another shape (the record became an array, a string, ...) does not match.
    """
    if saved is None or live is None:
        return False
    try:
        return _within_tolerance(saved, live, kind, abs_tolerance, rel_tolerance)
    except (TypeError, ValueError):
        if kind not in _SPECS:
            raise
        return False


def _within_tolerance(saved, live, kind: str, abs_tolerance: float, rel_tolerance: float) -> bool:
    how = _SPECS.get(kind, _NO_SPEC).compare
    if how == NUMBER:
        return numbers_within_tolerance(float(saved), float(live), abs_tolerance, rel_tolerance)
    if how == NUMBER_ARRAY:
        saved, live = ev.as_list(saved), ev.as_list(live)
        return len(saved) == len(live) and all(
            numbers_within_tolerance(float(s), float(v), abs_tolerance, rel_tolerance)
            for s, v in zip(saved, live, strict=True)
        )
    if how == ENUM:  # by index
        return int(saved) == int(live)
    if how == EXACT_ARRAY:
        saved, live = ev.as_list(saved), ev.as_list(live)
        return len(saved) == len(live) and all(str(s) == str(v) for s, v in zip(saved, live, strict=True))
    if how == EXACT:
        return str(saved) == str(live)
    if how == STRUCT:
        return structures_within(saved, live, abs_tolerance, rel_tolerance)
    raise ValueError(f"unknown value kind {kind!r}")


def structures_within(saved: str, live: str, abs_tolerance: float = 0.0, rel_tolerance: float = 0.0) -> bool:
    """Whether two structures' typed JSON texts match (the STRUCT category's rule, see the module):
    equal texts, or structures alike but for numbers of number columns each within tolerance."""
    if saved == live:
        return True
    pairs = tolerant_pairs(saved, live)
    return pairs is not None and all(
        numbers_within_tolerance(s, v, abs_tolerance, rel_tolerance) for s, v in zip(*pairs, strict=True)
    )


def tolerant_pairs(saved, live) -> tuple[list[float], list[float]] | None:
    """What decides whether two structures match, whatever the tolerances: None when they differ
    beyond any tolerance (columns, rows, other fields, a text or boolean element, text that is not
    typed JSON); else the numbers of NTTable number columns that differ, saved and live element
    by element (empty lists: they match exactly). They match within tolerances when every pair
    does (numbers_within_tolerance); rules_sql does the same with arrays_within."""
    a, b = ev.parse_structure(saved), ev.parse_structure(live)
    if a is None or b is None:
        return None
    ta, tb = ev.table_of(a), ev.table_of(b)
    if ta is None or tb is None:
        return ([], []) if ta is None and tb is None and ev.json_equal(a, b) else None
    if ta.columns != tb.columns or not ev.json_equal(ta.rest, tb.rest):
        return None
    saved_numbers, live_numbers = [], []
    for name, _ in ta.columns:
        x, y = ta.data[name], tb.data[name]
        if len(x) != len(y):
            return None
        tolerant = ta.tolerant(name)
        for s, v in zip(x, y, strict=True):
            if ev.json_equal(s, v):
                continue
            s_number, v_number = ev.number_of(s), ev.number_of(v)
            if not tolerant or s_number is None or v_number is None:
                return None
            saved_numbers.append(s_number)
            live_numbers.append(v_number)
    return saved_numbers, live_numbers


DIFFERENCES_SHOWN = 8  # lines of structure_differences
ROWS_SHOWN = 10  # row numbers listed per column


def structure_differences(
    saved, live, abs_tolerance: float = 0.0, rel_tolerance: float = 0.0, limit: int = DIFFERENCES_SHOWN
) -> list[str]:
    """How structure `live` differs from `saved`, one line each (at most `limit`; none when they
    match): for NTTables, columns added, removed or retyped, the row count, other fields, then
    per column the rows (from 0) whose elements differ ("column `setpoint`: rows 2, 5 differ");
    for other structures, the fields that differ."""
    if saved == live:
        return []
    a, b = ev.parse_structure(saved), ev.parse_structure(live)
    if a is None or b is None:
        return ["the text differs (not typed JSON)"]
    ta, tb = ev.table_of(a), ev.table_of(b)
    if ta is None or tb is None:
        if (ta is None) != (tb is None):
            return [f"a table in {'B' if tb is not None else 'A'} only"]
        return (_header_differences(a, b) + _field_differences(a["value"], b["value"], "", limit))[:limit]
    lines = _column_changes(ta, tb)
    if lines:
        return lines[:limit]
    rows_a, rows_b = ta.rows, tb.rows
    if rows_a != rows_b:
        lines.append(f"rows: {rows_b}, expected {rows_a}")
    lines += _header_differences(ta.rest, tb.rest) + _field_differences(ta.rest["value"], tb.rest["value"], "", limit)
    for name, _ in ta.columns:
        if len(lines) >= limit:
            break
        x, y = ta.data[name], tb.data[name]
        if len(x) != len(y):
            if rows_a == rows_b:  # a column of its own length: malformed, said as such
                lines.append(f"column `{name}`: {len(y)} rows, expected {len(x)}")
            continue
        if ta.tolerant(name):
            differing = [
                i
                for i, (s, v) in enumerate(zip(x, y, strict=True))
                if not _elements_within(s, v, abs_tolerance, rel_tolerance)
            ]
        else:
            differing = [i for i, (s, v) in enumerate(zip(x, y, strict=True)) if not ev.json_equal(s, v)]
        if differing:
            listed = ", ".join(str(i) for i in differing[:ROWS_SHOWN])
            more = f", … ({len(differing)} rows)" if len(differing) > ROWS_SHOWN else ""
            said = f"row {listed} differs" if len(differing) == 1 else f"rows {listed}{more} differ"
            lines.append(f"column `{name}`: {said}")
    return lines[:limit]


TABLE_ROWS_SHOWN = 50  # rows of table_cells


def table_cells(saved, live, abs_tolerance: float = 0.0, rel_tolerance: float = 0.0):
    """Two NTTables of the same columns side by side, for a page: (column names, rows), each row
    (index, cells), each cell (A's text, B's text or None where B's element matches, whether it
    differs); at most TABLE_ROWS_SHOWN rows. None unless both are tables of the same columns."""
    ta, tb = ev.table_of(ev.parse_structure(saved)), ev.table_of(ev.parse_structure(live))
    if ta is None or tb is None or ta.columns != tb.columns:
        return None
    rows = []
    for i in range(min(max(ta.rows, tb.rows), TABLE_ROWS_SHOWN)):
        cells = []
        for name, _ in ta.columns:
            numbers = ta.tolerant(name)
            x, y = ta.data[name], tb.data[name]
            a_text = ev.element_text(x[i], numbers) if i < len(x) else ""
            b_text = ev.element_text(y[i], numbers) if i < len(y) else ""
            if i < len(x) and i < len(y):
                same = (
                    _elements_within(x[i], y[i], abs_tolerance, rel_tolerance) if numbers else ev.json_equal(x[i], y[i])
                )
            else:
                same = False
            cells.append((a_text, None if same and a_text == b_text else b_text, not same))
        rows.append((i, cells))
    return [name for name, _ in ta.columns], rows


def columns_side_by_side(reference, others, abs_tolerance: float = 0.0, rel_tolerance: float = 0.0):
    """An NTTable `reference` against several other values (`others`, None where a column has
    none to compare), for the N-way page: the table columns in which some other table differs,
    each (column name, rows), a row (index, the reference's text, one cell per other value) for
    the rows where some other table differs, a cell (text, whether it differs) (text "" where a
    value is not a table of the reference's columns, or lacks the row); at most TABLE_ROWS_SHOWN
    rows a column. None when `reference` is not a table or nothing differs element by element
    (columns added or removed are said by structure_differences)."""
    ta = ev.table_of(ev.parse_structure(reference))
    if ta is None:
        return None
    tables = []
    for other in others:
        tb = ev.table_of(ev.parse_structure(other)) if other is not None else None
        tables.append(tb if tb is not None and tb.columns == ta.columns else None)
    result = []
    for name, _ in ta.columns:
        numbers, x = ta.tolerant(name), ta.data[name]
        rows = []
        for i in range(max([len(x)] + [len(tb.data[name]) for tb in tables if tb is not None])):
            cells = []
            for tb in tables:
                y = tb.data[name] if tb is not None else []
                if tb is None:
                    cells.append(("", False))
                elif i >= len(y) or i >= len(x):
                    cells.append((ev.element_text(y[i], numbers) if i < len(y) else "", True))
                else:
                    same = (
                        _elements_within(x[i], y[i], abs_tolerance, rel_tolerance)
                        if numbers
                        else ev.json_equal(x[i], y[i])
                    )
                    cells.append((ev.element_text(y[i], numbers), not same))
            if any(differs for _, differs in cells):
                rows.append((i, ev.element_text(x[i], numbers) if i < len(x) else "", cells))
        if rows:
            result.append((name, rows[:TABLE_ROWS_SHOWN]))
    return result or None


def _elements_within(saved, live, abs_tolerance: float, rel_tolerance: float) -> bool:
    s, v = ev.number_of(saved), ev.number_of(live)
    if s is None or v is None:
        return ev.json_equal(saved, live)
    return numbers_within_tolerance(s, v, abs_tolerance, rel_tolerance)


def _column_changes(a: ev.Table, b: ev.Table) -> list[str]:
    if a.columns == b.columns:
        return []
    types_a, types_b = dict(a.columns), dict(b.columns)
    lines = [f"column `{name}` added" for name in types_b if name not in types_a]
    lines += [f"column `{name}` removed" for name in types_a if name not in types_b]
    lines += [
        f"column `{name}`: type {types_b[name]}, expected {code}"
        for name, code in a.columns
        if name in types_b and types_b[name] != code
    ]
    return lines or ["columns in another order"]


def _header_differences(a: dict, b: dict) -> list[str]:
    """The type id and type of two structures, where they differ."""
    lines = []
    if not ev.json_equal(a.get("id"), b.get("id")):
        lines.append(f"type id {_json_text(b.get('id'))}, expected {_json_text(a.get('id'))}")
    if not ev.json_equal(a.get("type"), b.get("type")):
        lines.append("the type differs")
    for key in sorted((a.keys() | b.keys()) - {"id", "type", "value"}):
        if key not in a or key not in b or not ev.json_equal(a[key], b[key]):
            lines.append(f"`{key}` differs")
    return lines


def _json_text(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def _field_differences(a, b, path: str, limit: int) -> list[str]:
    """The fields (dotted paths) where JSON values `a` and `b` differ."""
    if ev.json_equal(a, b):
        return []
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return [f"field `{path}` differs" if path else "the value differs"]
    lines = []
    for key in list(a) + [key for key in b if key not in a]:
        if len(lines) >= limit:
            break
        where = f"{path}.{key}" if path else key
        if key not in b or key not in a:
            lines.append(f"field `{where}` {'removed' if key not in b else 'added'}")
        else:
            lines += _field_differences(a[key], b[key], where, limit - len(lines))
    return lines[:limit]


def compare_values(saved, live, kind: str, abs_tolerance: float = 0.0, rel_tolerance: float = 0.0) -> str:
    """EQUAL (within zero tolerance), WITHIN (within the tolerances) or OUT_OF_TOLERANCE."""
    if within_tolerance(saved, live, kind):
        return ComparisonStatus.EQUAL
    if within_tolerance(saved, live, kind, abs_tolerance, rel_tolerance):
        return ComparisonStatus.WITHIN
    return ComparisonStatus.OUT_OF_TOLERANCE


def comparison_status(
    a: Sample | None, b: Sample | None, abs_tolerance: float = 0.0, rel_tolerance: float = 0.0
) -> str:
    """The status of a row comparing `a` (saved) with `b`; None is a side without the PV.

    In this order: a side without the PV (ONLY_IN_B, ONLY_IN_A), a side without a value
    (DISCONNECTED), values of different kinds (TYPE_CHANGED), then :func:`compare_values`.
    """
    if a is None:
        return ComparisonStatus.ONLY_IN_B
    if b is None:
        return ComparisonStatus.ONLY_IN_A
    if not (a.connected and b.connected) or a.value is None or b.value is None:
        return ComparisonStatus.DISCONNECTED
    if a.kind != b.kind:
        return ComparisonStatus.TYPE_CHANGED
    return compare_values(a.value, b.value, a.kind, abs_tolerance, rel_tolerance)


def magnitude(difference) -> float | None:
    """The size of a :func:`delta`: |delta|, for arrays the largest |element delta|.

    None for no delta (and an empty array); NaN when any element delta is NaN, as PostgreSQL's
    max() gives, where NaN sorts above every number.
    """
    if difference is None:
        return None
    if isinstance(difference, list):
        if not difference:
            return None
        sizes = [abs(d) for d in difference]
        return math.nan if any(math.isnan(d) for d in sizes) else max(sizes)
    return abs(difference)


def delta(saved, live, kind: str):
    """live - saved: a float for numbers, a list of floats for arrays of equal length, else None.

    None where a difference means nothing: strings, enums, a missing value, arrays of different
    length (the length itself differs; see :func:`describe_difference`).
    """
    if saved is None or live is None:
        return None
    how = _SPECS.get(kind, _NO_SPEC).compare
    if how == NUMBER:
        return _difference(float(saved), float(live))
    if how == NUMBER_ARRAY:
        saved, live = ev.as_list(saved), ev.as_list(live)
        if len(saved) != len(live):
            return None
        return [_difference(float(s), float(v)) for s, v in zip(saved, live, strict=False)]
    return None


def describe_difference(saved, live, kind: str) -> str:
    """A short human description of how `live` differs from `saved` (for messages and the admin)."""
    if saved is None:
        return "no saved value"
    if live is None:
        return "no live value"
    how = _SPECS.get(kind, _NO_SPEC).compare
    if how == STRUCT:
        return "; ".join(structure_differences(saved, live)) or "equal"
    if how == NUMBER_ARRAY or how == EXACT_ARRAY:
        saved, live = ev.as_list(saved), ev.as_list(live)
        if len(saved) != len(live):
            return f"length {len(live)}, expected {len(saved)}"
        differing = [i for i, (s, v) in enumerate(zip(saved, live, strict=False)) if not _elements_equal(s, v, how)]
        if not differing:
            return "equal"
        first = differing[0]
        return (
            f"{len(differing)} of {len(saved)} elements differ, "
            f"first at [{first}]: {live[first]!r} (expected {saved[first]!r})"
        )
    return f"{live!r} (expected {saved!r})"


def _elements_equal(saved, live, how: str) -> bool:
    if how == EXACT_ARRAY:
        return str(saved) == str(live)
    return numbers_within_tolerance(float(saved), float(live))


def _difference(saved: float, live: float) -> float:
    if math.isnan(saved) and math.isnan(live):
        return 0.0
    if math.isinf(saved) and saved == live:
        return 0.0
    return live - saved
