"""The N-way pages' rows, totals and counts against a plain reading of the rules, row by row.

`expected` compares each PV of a mixed case (every value kind, PVs missing from the reference or
a column, a PV gone from the registry, disconnected and uncached live values, alarm severities)
with snapshots.comparison.rules in Python, one SnapshotValue and one live value at a time, and
applies the filters and the paging as NWayComparison documents them; compare_columns, however
it reads and counts the rows, must give the same pages.
"""

import pytest

from monitor import live
from pvs.models import PV
from snapshots.capture.models import SnapshotValue
from snapshots.comparison.nway import NWayComparison, compare_columns
from snapshots.comparison.rules import MATCHING_STATUSES, ComparisonStatus, comparison_status
from squirrel_site.epics_values import NO_VALUE, Value, from_columns, to_columns
from squirrel_site.testing.snapshots import Enum
from tags.models import Tag, TagGroup

pytestmark = pytest.mark.django_db

NAN = float("nan")
_MATCHING = {status.value for status in MATCHING_STATUSES}


@pytest.fixture
def mixed(make_snapshot, make_pvs, live_values):
    """A reference and two snapshot columns of every kind; live values for some PVs."""
    make_pvs("F:1", "F:2", "F:NAN", "I:1", "E:1", "S:1", "W:1", "W:2", "SA:1", "D:1", abs_tolerance=0.1)
    make_pvs("R:1", "R:2", "ONLY:B", "ONLY:C", rel_tolerance=0.01, device="MAG")
    a = make_snapshot(
        "A",
        {
            "F:1": 1.0, "F:2": 2.0, "F:NAN": NAN, "I:1": 7, "E:1": Enum(1), "S:1": "auto", "W:1": [1.0, 2.0, 3.0],
            "W:2": [1.0, 2.0], "SA:1": "x", "D:1": None, "R:1": 100.0, "R:2": 5.0, "GONE:1": 3.0,
        },
        severities={"F:2": 2, "R:1": 1},
    )  # fmt: skip
    b = make_snapshot(
        "B",
        {
            "F:1": 1.05, "F:2": 2.5, "F:NAN": NAN, "I:1": 9, "E:1": Enum(2), "S:1": "manual", "W:1": [1.0, 2.05, 3.0],
            "W:2": [1.0, 2.0, 3.0], "SA:1": "x", "D:1": 4.0, "R:1": 100.5, "ONLY:B": 1.0, "GONE:1": 3.0,
        },
        severities={"R:1": 3},
    )  # fmt: skip
    c = make_snapshot(
        "C",
        {"F:1": 1.0, "F:2": 2.0, "I:1": 7.5, "E:1": Enum(1), "S:1": "auto", "W:1": [1.0, 2.0, 3.0], "ONLY:C": "c"},
        severities={"ONLY:C": 2},
    )
    # A string array in A and B, element by element exactly.
    kind, num, text, array = to_columns("string_array", ["a", "b"])
    SnapshotValue.objects.filter(snapshot__in=[a, b], pv_name="SA:1").update(
        value_type=kind, setpoint_num=num, setpoint_str=text, setpoint_array=array
    )
    live_values(
        {"F:1": 1.02, "F:2": None, "I:1": 7, "E:1": Enum(0), "S:1": "auto", "W:1": [1.0, 2.0], "R:1": 101.5,
         "ONLY:B": 2.0},
        severities={"F:1": 2, "E:1": 3},
    )  # fmt: skip
    return a, b, c


def _saved(snapshot) -> dict[str, SnapshotValue]:
    return {row.pv_name: row for row in SnapshotValue.objects.filter(snapshot=snapshot)}


def _value(row: SnapshotValue | None) -> Value | None:
    if row is None:
        return None
    return Value(row.pv_name, row.value_type, from_columns(row.value_type, row.setpoint_num, row.setpoint_str,
                                                           row.setpoint_array), connected=row.connected)  # fmt: skip


def expected(comparison: NWayComparison, offset: int = 0, limit: int | None = 100):
    """(names shown, each shown row's statuses, total, counts) by the rules, row by row."""
    reference = _saved(comparison.reference)
    columns = [None if column is None else _saved(column) for column in comparison.columns]
    names = set(reference).union(*(column for column in columns if column is not None))
    if comparison.name:
        names = {name for name in names if comparison.name.lower() in name.lower()}
    registry = {pv.setpoint_address: pv for pv in PV.objects.filter(setpoint_address__in=names)}
    if comparison.pvs is not None:
        selected = set(comparison.pvs.values_list("pk", flat=True))
        names = {name for name in names if name in registry and registry[name].pk in selected}
    values = live.read_values(sorted(name for name in names if name in registry))
    counts = [{status.value: 0 for status in ComparisonStatus} for _ in columns]
    shown = []
    for name in sorted(names, reverse=comparison.descending):
        pv = registry.get(name)
        abs_tol = comparison.abs_tolerance if comparison.abs_tolerance is not None else (pv.abs_tolerance if pv else 0)
        rel_tol = comparison.rel_tolerance if comparison.rel_tolerance is not None else (pv.rel_tolerance if pv else 0)
        saved = _value(reference.get(name))
        statuses, severities = [], [reference[name].severity] if name in reference else []
        for column in columns:
            if column is None:
                value = values.get(name) if pv else None
                other = (value or Value("", NO_VALUE, None, connected=False)) if pv else None
                if value is not None and value.connected:
                    severities.append(value.severity)
            else:
                other = _value(column.get(name))
                if name in column:
                    severities.append(column[name].severity)
            in_neither = saved is None and other is None
            statuses.append(None if in_neither else str(comparison_status(saved, other, abs_tol or 0, rel_tol or 0)))
        if comparison.min_severity is not None and not any(
            s is not None and s >= comparison.min_severity for s in severities
        ):
            continue
        for column, status in enumerate(statuses):
            if status is not None:
                counts[column][status] += 1
        known = [status for status in statuses if status is not None]
        if comparison.differences_only and all(status in _MATCHING for status in known):
            continue
        if comparison.statuses and not any(status in comparison.statuses for status in known):
            continue
        shown.append((name, statuses))
    page = shown[offset : None if limit is None else offset + limit]
    return [name for name, _ in page], [statuses for _, statuses in page], len(shown), counts


def actual(comparison: NWayComparison, offset: int = 0, limit: int | None = 100):
    page = compare_columns(comparison, offset=offset, limit=limit)
    statuses = [[None if s is None else str(s) for s in row.statuses] for row in page.rows]
    return [row.name for row in page.rows], statuses, page.total, page.counts


FILTERS = [
    {},
    {"differences_only": True},
    {"statuses": frozenset({"equal"})},
    {"statuses": frozenset({"only_in_b", "type_changed"})},
    {"statuses": frozenset({"disconnected"}), "differences_only": True},
    {"min_severity": 2},
    {"min_severity": 3, "differences_only": True},
    {"name": "f:"},
    {"descending": True},
    {"abs_tolerance": 1.0, "rel_tolerance": 0.0},
]


def test_pages_rows_and_counts_follow_the_rules_row_by_row(mixed):
    a, b, c = mixed
    # The live column last, first, alone; none; the reference as a column.
    for columns in ((b, c, None), (None, c, b), (None,), (b, c), (c, b, a)):
        for filters in FILTERS:
            comparison = NWayComparison(a, columns, **filters)
            case = ([column and column.title for column in columns], filters)
            whole = expected(comparison, limit=None)
            assert actual(comparison, limit=None) == whole, case
            assert whole[2] > 0 or "statuses" in filters, case  # the case shows rows
            for offset, limit in ((0, 3), (3, 3), (whole[2] - 1, 5), (whole[2] + 2, 3)):
                assert actual(comparison, offset, limit) == expected(comparison, offset, limit), (case, offset, limit)


def test_a_registry_selection(mixed):
    a, b, c = mixed
    ring = Tag.objects.create(group=TagGroup.objects.create(name="Area"), name="Ring")
    for name in ("F:1", "W:2", "ONLY:B", "ONLY:C"):
        PV.objects.get(setpoint_address=name).tags.add(ring)
    for columns, names in (((b, c, None), ["F:1", "ONLY:B", "ONLY:C", "W:2"]), ((None,), ["F:1", "W:2"])):
        comparison = NWayComparison(a, columns, pvs=PV.objects.filter(tags=ring))
        assert actual(comparison, limit=None) == expected(comparison, limit=None)
        assert actual(comparison, limit=None)[0] == names
