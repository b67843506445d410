"""N-way comparison (snapshots.comparison.nway): columns against a reference, as the two-way one."""

import csv
import io

import pytest

from pvs.models import PV
from snapshots.capture.models import SnapshotValue
from snapshots.comparison import nway
from snapshots.comparison.nway import MAX_COLUMNS, NWayComparison, compare_columns, write_nway_csv
from snapshots.comparison.rows import Comparison, compare
from squirrel_site.testing.snapshots import Enum
from tags.models import Tag, TagGroup

pytestmark = pytest.mark.django_db

NAN = float("nan")


@pytest.fixture
def three(before_after, make_snapshot):
    """The reference (A of before_after), B and a third snapshot C."""
    a, b = before_after
    c = make_snapshot(
        "C",
        {"P:A": 1.0, "P:B": 1.5, "P:C": NAN, "P:D": Enum(1), "P:E": [1.0, 2.0], "P:F": "auto"},
        severities={"P:B": 2},
        precision=2,
    )
    return a, b, c


def by_name(page):
    return {row.name: row for row in page.rows}


def test_each_column_is_the_two_way_comparison_with_the_reference(three):
    a, b, c = three
    page = compare_columns(NWayComparison(a, (b, c, a)))
    assert [row.name for row in page.rows] == ["P:A", "P:B", "P:C", "P:D", "P:E", "P:F", "P:G"]
    assert page.total == 7
    for index, other in enumerate((b, c, a)):
        pairwise = {row.name: row for row in compare(Comparison(a=a, b=other), limit=None).rows}
        for row in page.rows:
            cell = row.cells[index]
            expected = pairwise.get(row.name)
            status = expected.status if expected else None
            assert cell.status == status, (row.name, index)
            assert cell.delta_display == (expected.delta_display if expected else "")
        assert page.counts[index]["out_of_tolerance"] == sum(r.status == "out_of_tolerance" for r in pairwise.values())
    rows = by_name(page)
    assert [cell.delta_display for cell in rows["P:B"].cells] == ["+1.00", "-0.50", "0.00"]
    assert [cell.status for cell in rows["P:G"].cells] == ["only_in_b", None, None]


def test_rows_missing_from_the_reference_or_a_column(three):
    a, b, c = three
    rows = by_name(compare_columns(NWayComparison(a, (b, c))))
    assert [cell.status for cell in rows["P:G"].cells] == ["only_in_b", None]
    assert rows["P:G"].reference is None and rows["P:G"].cells[0].b.value == 7.0
    assert [cell.status for cell in rows["P:F"].cells] == ["only_in_a", "equal"]


def test_filters_apply_to_the_row_as_a_whole(three):
    a, b, c = three
    names = lambda **kw: [row.name for row in compare_columns(NWayComparison(a, (b, c), **kw)).rows]  # noqa: E731
    assert names(differences_only=True) == ["P:A", "P:B", "P:C", "P:D", "P:E", "P:F", "P:G"][1:]
    assert names(statuses=frozenset({"type_changed"})) == []
    assert names(statuses=frozenset({"only_in_a"})) == ["P:F"]
    assert names(name="d") == ["P:D"]
    assert names(min_severity=2) == ["P:B"]
    severe = compare_columns(NWayComparison(a, (b, c), min_severity=2, statuses=frozenset({"equal"})))
    assert severe.rows == [] and severe.counts[0]["out_of_tolerance"] == 1  # counted: severe, any status
    assert sum(severe.counts[1].values()) == 1
    tag = Tag.objects.create(group=TagGroup.objects.create(name="Area"), name="Ring")
    PV.objects.get(setpoint_address="P:E").tags.add(tag)
    assert names(pvs=PV.objects.filter(tags=tag)) == ["P:E"]
    assert names(descending=True)[:2] == ["P:G", "P:F"]
    page = compare_columns(NWayComparison(a, (b, c), differences_only=True), offset=2, limit=2)
    assert [row.name for row in page.rows] == ["P:D", "P:E"] and page.total == 6


def test_a_live_column_and_readbacks(three, live_values, make_pvs):
    a, b, c = three
    PV.objects.filter(setpoint_address="P:A").update(readback_address="P:A:RB")
    SnapshotValue.objects.filter(snapshot=a, pv_name="P:A").update(readback_name="P:A:RB", readback_num=0.98)
    live_values({"P:A": 1.5, "P:A:RB": 1.49, "P:B": 2.0, "P:D": Enum(2)}, severities={"P:D": 3})
    page = compare_columns(NWayComparison(a, (b, None)))
    rows = by_name(page)
    assert [cell.status for cell in rows["P:A"].cells] == ["within", "out_of_tolerance"]
    assert rows["P:A"].reference.readback.display == "0.98"
    assert rows["P:A"].cells[1].b.readback.value == 1.49
    assert rows["P:A"].cells[1].delta_display == "+0.50"
    assert rows["P:B"].cells[1].status == "equal"
    assert rows["P:D"].cells[1].b.label == "Fault"
    assert rows["P:E"].cells[1].status == "disconnected"  # no value in the cache
    assert page.counts[1]["equal"] == 1
    live_only = compare_columns(NWayComparison(a, (None,), min_severity=3))
    assert [row.name for row in live_only.rows] == ["P:D"]
    differing = compare_columns(NWayComparison(a, (c, None), differences_only=True, statuses=frozenset({"equal"})))
    # A difference in some column, and equal in some column (P:E differs in both, P:G is in neither).
    assert [row.name for row in differing.rows] == ["P:A", "P:B", "P:C", "P:D", "P:F"]
    assert differing.total == 5 and differing.counts[0]["out_of_tolerance"] == 2


def test_columns_are_one_to_eight_with_one_live(three):
    a, b, _ = three
    with pytest.raises(ValueError):
        NWayComparison(a, ())
    with pytest.raises(ValueError):
        NWayComparison(a, (b,) * (MAX_COLUMNS + 1))
    with pytest.raises(ValueError):
        NWayComparison(a, (None, None))
    assert len(compare_columns(NWayComparison(a, (b,) * MAX_COLUMNS)).rows[0].cells) == MAX_COLUMNS


def test_the_csv_is_written_in_chunks_with_every_row(three, monkeypatch):
    a, b, c = three
    comparison = NWayComparison(a, (b, c), differences_only=True)
    whole = io.StringIO()
    write_nway_csv(comparison, whole)
    monkeypatch.setattr(nway, "CSV_CHUNK", 2)
    chunked = io.StringIO()
    assert write_nway_csv(comparison, chunked) == 6
    assert chunked.getvalue() == whole.getvalue()
    lines = list(csv.reader(io.StringIO(chunked.getvalue())))
    assert [line[0] for line in lines[1:]] == [row.name for row in compare_columns(comparison, limit=None).rows]
