"""Comparing saved and live values: pure functions, no database, no Redis, no Channel Access.

Kinds are squirrel_site.epics_values' (each kind's ``compare`` says which rule applies).
Numbers match when ``|live - saved| <= max(abs_tolerance,
rel_tolerance * |saved|)``; arrays match element by element and only at equal length; strings
and enums (by index) match only exactly, arrays of strings element by element, exactly.
``None`` (no value, disconnected) never matches.

NaN: two NaNs count as equal (a record that reads NaN and was saved as NaN has not changed);
NaN against a number never matches. Infinities match only the same infinity.

A row of a comparison (snapshot against snapshot or against live values) gets one
:class:`ComparisonStatus` from :func:`comparison_status`. snapshots.comparison.rows computes the same
statuses in SQL for snapshot pairs; its tests check the two agree.
"""

from __future__ import annotations

import math
from typing import Protocol

from django.db import models

from squirrel_site import epics_values as ev

# One rule per category of squirrel_site.epics_values.KindSpec.compare, never per kind: a kind
# is compared by the rule of its spec's category (ev.compare_of).
NUMBER, NUMBER_ARRAY, ENUM, EXACT, EXACT_ARRAY = ev.NUMBER, ev.NUMBER_ARRAY, ev.ENUM, ev.EXACT, ev.EXACT_ARRAY
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
    raise ValueError(f"unknown value kind {kind!r}")


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
