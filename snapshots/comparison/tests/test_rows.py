"""snapshots.comparison.rows: snapshot against snapshot (SQL) and against live values (Redis)."""

import csv
import io
import math

import pytest

from monitor import live
from pvs.models import PV
from snapshots.comparison import rows as comparison
from snapshots.comparison.rows import Comparison, compare, sort_rows, write_csv
from snapshots.comparison.rules import ComparisonStatus as S
from snapshots.comparison.rules import comparison_status
from squirrel_site.testing.snapshots import Enum
from tags.models import Tag, TagGroup

pytestmark = pytest.mark.django_db

NAN, INF = math.nan, math.inf

# name: (value in A, value in B, abs tolerance, rel tolerance, expected status); `...` = absent.
ROWS = {
    "F:EQUAL": (1.5, 1.5, 0.0, 0.0, S.EQUAL),
    "F:WITHIN_ABS": (10.0, 10.5, 0.5, 0.0, S.WITHIN),
    "F:OUT_ABS": (10.0, 10.51, 0.5, 0.0, S.OUT_OF_TOLERANCE),
    "F:WITHIN_REL_NEG": (-100.0, -100.9, 0.0, 0.01, S.WITHIN),
    "F:OUT_REL_NEG": (-100.0, -101.1, 0.0, 0.01, S.OUT_OF_TOLERANCE),
    "F:ZERO_TOL": (0.0, 1e-12, 0.0, 0.5, S.OUT_OF_TOLERANCE),
    "F:NAN_NAN": (NAN, NAN, 0.0, 0.0, S.EQUAL),
    "F:NAN_NUM": (NAN, 1.0, 1e300, 1.0, S.OUT_OF_TOLERANCE),
    "F:INF_INF": (INF, INF, 0.0, 0.0, S.EQUAL),
    "F:INF_NEG": (INF, -INF, 1e300, 1.0, S.OUT_OF_TOLERANCE),
    "F:HUGE": (1e308, -1e308, 0.0, 10.0, S.WITHIN),
    "I:WITHIN": (5, 6, 1.0, 0.0, S.WITHIN),
    "I:OUT": (5, 7, 1.0, 0.0, S.OUT_OF_TOLERANCE),
    "E:SAME": (Enum(1), Enum(1), 5.0, 0.0, S.EQUAL),
    "E:OTHER": (Enum(1), Enum(2), 5.0, 1.0, S.OUT_OF_TOLERANCE),  # enums ignore tolerance
    "S:SAME": ("ON", "ON", 0.0, 0.0, S.EQUAL),
    "S:CASE": ("ON", "on", 1.0, 1.0, S.OUT_OF_TOLERANCE),
    "W:EQUAL": ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], 0.0, 0.0, S.EQUAL),
    "W:WITHIN": ([1.0, 2.0, 3.0], [1.0, 2.1, 3.0], 0.2, 0.0, S.WITHIN),
    "W:OUT": ([1.0, 2.0, 3.0, 4.0], [1.0, 2.5, 3.0, 3.0], 0.2, 0.0, S.OUT_OF_TOLERANCE),
    "W:LENGTH": ([1.0, 2.0], [1.0, 2.0, 3.0], 1.0, 1.0, S.OUT_OF_TOLERANCE),
    "W:EMPTY": ([], [], 0.0, 0.0, S.EQUAL),
    "W:INT": ([1, 2], [1, 4], 1.0, 0.0, S.OUT_OF_TOLERANCE),
    "X:TYPE": (1.0, "1.0", 0.0, 0.0, S.TYPE_CHANGED),
    "X:DISC_A": (None, 1.0, 0.0, 0.0, S.DISCONNECTED),
    "X:DISC_B": (1.0, None, 0.0, 0.0, S.DISCONNECTED),
    "X:ONLY_A": (1.0, ..., 0.0, 0.0, S.ONLY_IN_A),
    "X:ONLY_B": (..., 1.0, 0.0, 0.0, S.ONLY_IN_B),
}


@pytest.fixture
def pair(make_snapshot, make_pvs):
    """Two snapshots holding ROWS, every name a registry PV with the row's tolerances."""
    for name, (_, _, abs_tol, rel_tol, _) in ROWS.items():
        make_pvs(name, abs_tolerance=abs_tol, rel_tolerance=rel_tol, device=name.split(":")[0])
    a = make_snapshot("A", {name: row[0] for name, row in ROWS.items() if row[0] is not ...})
    b = make_snapshot("B", {name: row[1] for name, row in ROWS.items() if row[1] is not ...})
    return a, b


def rows_by_name(page):
    return {row.name: row for row in page.rows}


def test_every_kind_of_row_gets_its_status_in_sql(pair):
    a, b = pair
    page = compare(Comparison(a=a, b=b), limit=None)
    assert {row.name: row.status for row in page.rows} == {name: row[4] for name, row in ROWS.items()}


def test_sql_statuses_agree_with_compare_py_row_by_row(pair):
    a, b = pair
    for row in compare(Comparison(a=a, b=b), limit=None).rows:
        assert row.status == comparison_status(row.a, row.b, row.abs_tolerance, row.rel_tolerance), row.name


def test_sql_sorting_by_delta_agrees_with_python_magnitudes(pair):
    a, b = pair
    everything = compare(Comparison(a=a, b=b), limit=None).rows
    for sort in ("delta", "-delta", "status", "-severity", "device", "-name"):
        in_sql = [row.name for row in compare(Comparison(a=a, b=b, sort=sort), limit=None).rows]
        assert in_sql == [row.name for row in sort_rows(everything, sort)], sort


def test_counts_are_per_status_and_the_total_follows_the_status_filter(pair):
    a, b = pair
    page = compare(Comparison(a=a, b=b, differences_only=True), limit=5)
    expected = {status.value: 0 for status in S}
    for row in ROWS.values():
        expected[row[4]] += 1
    assert page.counts == expected
    assert page.total == len(ROWS) - expected[S.EQUAL] - expected[S.WITHIN]
    assert len(page.rows) == 5


def test_a_page_past_the_end_is_empty_but_counted(pair):
    a, b = pair
    page = compare(Comparison(a=a, b=b, sort="-name"), offset=100, limit=10)
    assert page.rows == [] and page.total == len(ROWS) and page.counts[S.EQUAL] == 7
    assert compare(Comparison(a=a, b=b, name="no such PV")).counts == {status.value: 0 for status in S}


def test_numbers_have_a_delta_and_others_none(pair):
    a, b = pair
    rows = rows_by_name(compare(Comparison(a=a, b=b), limit=None))
    assert rows["F:OUT_ABS"].delta == pytest.approx(0.51) and rows["F:OUT_ABS"].delta_display.startswith("+0.51")
    assert rows["F:NAN_NAN"].delta == 0.0 and math.isnan(rows["F:NAN_NUM"].delta)
    assert rows["F:HUGE"].delta == -INF and rows["F:HUGE"].delta_display == "-Infinity"
    assert rows["S:CASE"].delta is None and rows["E:OTHER"].delta is None and rows["X:TYPE"].delta is None


def test_arrays_are_compared_element_by_element(pair):
    a, b = pair
    rows = rows_by_name(compare(Comparison(a=a, b=b), limit=None))
    out = rows["W:OUT"]
    assert out.delta == [0.0, 0.5, 0.0, -1.0] and out.magnitude == 1.0
    assert out.differing_elements == [(1, "2", "2.5", "+0.5"), (3, "4", "3", "-1")]
    assert out.delta_display == "max |Δ| 1, 2 of 4 outside tolerance"
    assert rows["W:LENGTH"].delta is None and rows["W:LENGTH"].differing_elements == []
    assert rows["W:INT"].a.display == "[1, 2]"


def test_long_arrays_are_shortened_on_pages_and_whole_in_csv(make_snapshot):
    a = make_snapshot("A", {"W": [float(i) for i in range(8)]}, precision=1)
    b = make_snapshot("B", {"W": [float(i) for i in range(8)]})
    row = compare(Comparison(a=a, b=b)).rows[0]
    assert row.a.display == "[0.0, 1.0, 2.0, 3.0, 4.0, … (8 values)]"
    assert row.a.full_display == "[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]"


def test_enums_are_shown_by_label_and_compared_by_index(pair):
    a, b = pair
    row = rows_by_name(compare(Comparison(a=a, b=b), limit=None))["E:OTHER"]
    assert (row.a.display, row.b.display, row.a.value, row.b.value) == ("On", "Fault", 1, 2)


def test_rows_only_in_one_snapshot_have_one_side(pair):
    a, b = pair
    rows = rows_by_name(compare(Comparison(a=a, b=b), limit=None))
    assert rows["X:ONLY_A"].b is None and rows["X:ONLY_A"].a.value == 1.0
    assert rows["X:ONLY_B"].a is None and rows["X:ONLY_B"].b.value == 1.0
    assert rows["X:DISC_A"].a.display == "disconnected"


def test_a_deleted_pv_is_still_compared_with_zero_tolerance(pair):
    a, b = pair
    PV.objects.get(setpoint_address="F:WITHIN_ABS").delete()
    row = rows_by_name(compare(Comparison(a=a, b=b), limit=None))["F:WITHIN_ABS"]
    assert (row.pv_id, row.device, row.status) == (None, "", S.OUT_OF_TOLERANCE)
    overridden = compare(Comparison(a=a, b=b, abs_tolerance=1.0, name="WITHIN_ABS")).rows[0]
    assert overridden.status == S.WITHIN


def test_tolerance_overrides_replace_every_pvs_own(pair):
    a, b = pair
    rows = rows_by_name(compare(Comparison(a=a, b=b, abs_tolerance=0.0, rel_tolerance=0.0), limit=None))
    assert rows["F:WITHIN_ABS"].status == S.OUT_OF_TOLERANCE and rows["I:WITHIN"].status == S.OUT_OF_TOLERANCE
    rows = rows_by_name(compare(Comparison(a=a, b=b, rel_tolerance=1.0), limit=None))
    assert rows["F:OUT_REL_NEG"].status == S.WITHIN
    assert rows["F:OUT_ABS"].status == S.WITHIN  # 0.51 <= 100% of 10
    assert rows["F:OUT_ABS"].abs_tolerance == 0.5  # the PV's own, not overridden


@pytest.fixture
def area(pair):
    """Tag group Area: tag Linac on the F:* PVs, tag Ring on I:* and F:EQUAL."""
    group = TagGroup.objects.create(name="Area")
    linac, ring = Tag.objects.create(group=group, name="Linac"), Tag.objects.create(group=group, name="Ring")
    for pv in PV.objects.filter(setpoint_address__startswith="F:"):
        pv.tags.add(linac)
    for pv in PV.objects.filter(setpoint_address__startswith="I:") | PV.objects.filter(setpoint_address="F:EQUAL"):
        pv.tags.add(ring)
    return group, linac, ring


def names(page):
    return [row.name for row in page.rows]


def test_filters_select_by_tag_group_device_name_and_status(pair, area):
    a, b = pair
    group, linac, ring = area
    tagged = PV.objects.tagged(ring)
    assert names(compare(Comparison(a=a, b=b, pvs=tagged))) == ["F:EQUAL", "I:OUT", "I:WITHIN"]
    in_group = compare(Comparison(a=a, b=b, pvs=PV.objects.in_tag_group(group)), limit=None)
    assert len(in_group.rows) == 13 and sum(in_group.counts.values()) == 13
    assert names(compare(Comparison(a=a, b=b, pvs=PV.objects.filter(device__istartswith="w")))) == [
        "W:EMPTY",
        "W:EQUAL",
        "W:INT",
        "W:LENGTH",
        "W:OUT",
        "W:WITHIN",
    ]
    assert names(compare(Comparison(a=a, b=b, name="nan_"))) == ["F:NAN_NAN", "F:NAN_NUM"]
    assert names(compare(Comparison(a=a, b=b, name="%"))) == []  # LIKE wildcards are literal
    shown = compare(Comparison(a=a, b=b, pvs=tagged, statuses=frozenset({S.WITHIN, S.EQUAL})))
    assert names(shown) == ["F:EQUAL", "I:WITHIN"] and shown.total == 2


def test_differences_only_hides_equal_and_within(pair):
    a, b = pair
    shown = {row.status for row in compare(Comparison(a=a, b=b, differences_only=True), limit=None).rows}
    assert shown == {S.OUT_OF_TOLERANCE, S.TYPE_CHANGED, S.DISCONNECTED, S.ONLY_IN_A, S.ONLY_IN_B}


def test_severity_filter_keeps_rows_alarming_on_either_side(make_snapshot):
    a = make_snapshot("A", {"P1": 1.0, "P2": 1.0, "P3": 1.0}, severities={"P1": 2})
    b = make_snapshot("B", {"P1": 1.0, "P2": 1.0, "P3": 1.0}, severities={"P2": 1})
    assert names(compare(Comparison(a=a, b=b, min_severity=1))) == ["P1", "P2"]
    assert names(compare(Comparison(a=a, b=b, min_severity=2))) == ["P1"]
    assert names(compare(Comparison(a=a, b=b, sort="-severity"))) == ["P1", "P2", "P3"]


@pytest.mark.parametrize("sort", ["name", "-name", "delta", "-delta", "status", "-status", "severity", "device"])
def test_pages_cover_every_row_once_in_a_stable_order(pair, sort):
    a, b = pair
    c = Comparison(a=a, b=b, sort=sort)
    whole = names(compare(c, limit=None))
    pages = [names(compare(c, offset=offset, limit=4)) for offset in range(0, len(ROWS), 4)]
    assert [name for page in pages for name in page] == whole and len(set(whole)) == len(ROWS)
    assert names(compare(c, offset=0, limit=4)) == pages[0]  # same again


def test_sorting_by_status_puts_what_needs_attention_first(pair):
    a, b = pair
    statuses = [row.status for row in compare(Comparison(a=a, b=b, sort="status"), limit=None).rows]
    assert statuses[0] == S.OUT_OF_TOLERANCE and statuses[-1] == S.EQUAL


def test_sorting_by_delta_puts_rows_without_delta_last_both_ways(pair):
    a, b = pair
    for sort in ("delta", "-delta"):
        rows = compare(Comparison(a=a, b=b, sort=sort), limit=None).rows
        sizes = [row.magnitude for row in rows]
        known = [s for s in sizes if s is not None]
        assert sizes[: len(known)] == known and all(s is None for s in sizes[len(known) :])
    top = compare(Comparison(a=a, b=b, sort="-delta"), limit=2).rows
    assert math.isnan(top[0].magnitude) and top[1].magnitude == INF  # NaN sorts above infinity


def test_csv_holds_every_shown_row_in_order(pair):
    a, b = pair
    c = Comparison(a=a, b=b, differences_only=True, sort="-delta")
    stream = io.StringIO()
    count = write_csv(c, stream)
    lines = stream.getvalue().splitlines()
    assert lines[0] == ",".join(comparison.CSV_HEADER)
    assert count == len(lines) - 1 == compare(c).total
    assert [line.split(",")[0] for line in lines[1:]] == names(compare(c, limit=None))


def test_csv_writes_formula_like_values_and_devices_as_text(make_snapshot, make_pvs):
    make_pvs("F:S", device="@evil")
    a = make_snapshot("A", {"F:S": "=cmd|'/C calc'!A0"})
    b = make_snapshot("B", {"F:S": "+1+1"})
    stream = io.StringIO(newline="")

    write_csv(Comparison(a=a, b=b), stream)

    row = dict(
        zip(comparison.CSV_HEADER, list(csv.reader(io.StringIO(stream.getvalue(), newline="")))[1], strict=False)
    )
    assert row["device"] == "'@evil"
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row.values())


# Against live values -------------------------------------------------------------------------


@pytest.fixture
def saved(make_snapshot, make_pvs):
    make_pvs("L:A", "L:B", "L:C", "L:D", "L:E", abs_tolerance=0.1)
    make_pvs("L:GONE")
    return make_snapshot("saved", {"L:A": 1.0, "L:B": 2.0, "L:C": Enum(0), "L:D": 4.0, "L:E": None, "L:GONE": 1.0})


def test_live_comparison_uses_the_registry_address_and_compare_py(saved, live_values):
    live_values({"L:A": 1.05, "L:B": 3.0, "L:C": Enum(2), "L:D": None, "L:E": 5.0})
    PV.objects.get(setpoint_address="L:GONE").delete()
    page = compare(Comparison(a=saved), limit=None)
    assert {row.name: row.status for row in page.rows} == {
        "L:A": S.WITHIN,
        "L:B": S.OUT_OF_TOLERANCE,
        "L:C": S.OUT_OF_TOLERANCE,
        "L:D": S.DISCONNECTED,
        "L:E": S.DISCONNECTED,
        "L:GONE": S.ONLY_IN_A,
    }
    rows = rows_by_name(page)
    assert rows["L:C"].b.display == "Fault" and rows["L:B"].delta == 1.0
    assert rows["L:A"].b.address == "L:A"
    assert page.counts[S.DISCONNECTED] == 2


def test_a_pv_missing_from_the_cache_is_disconnected(saved, live_values):
    live_values({"L:A": 1.0})
    row = rows_by_name(compare(Comparison(a=saved), limit=None))["L:B"]
    assert row.status == S.DISCONNECTED and row.b.display == "no value in the live cache"


def test_a_live_page_sorted_by_name_reads_only_its_own_addresses(saved, live_values, monkeypatch):
    live_values({"L:A": 1.0, "L:B": 2.0, "L:C": Enum(0), "L:D": 4.0, "L:E": 5.0})
    reads = []
    real = live.read_values
    monkeypatch.setattr(live, "read_values", lambda addresses: reads.append(list(addresses)) or real(addresses))
    page = compare(Comparison(a=saved), offset=2, limit=2, with_counts=False)
    assert names(page) == ["L:C", "L:D"] and page.total == 6 and page.counts is None
    assert reads == [["L:C", "L:D"]]
    compare(Comparison(a=saved, differences_only=True), limit=2, with_counts=False)
    assert len(reads[-1]) == 6  # every address of the selection


def test_live_rows_sort_and_filter_like_the_sql(saved, live_values):
    live_values({"L:A": 1.05, "L:B": 3.0, "L:C": Enum(2), "L:D": 4.0, "L:E": 5.0, "L:GONE": 1.0}, severities={"L:D": 2})
    assert names(compare(Comparison(a=saved, sort="-delta"), limit=3)) == ["L:B", "L:A", "L:D"]
    assert names(compare(Comparison(a=saved, differences_only=True), limit=None)) == ["L:B", "L:C", "L:E"]
    assert names(compare(Comparison(a=saved, min_severity=2), limit=None)) == ["L:D"]
    assert compare(Comparison(a=saved, min_severity=2), limit=None).counts[S.EQUAL] == 1
