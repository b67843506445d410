"""Structures (pvAccess NTTables and other structures, typed JSON text) compared: the rule
(snapshots.comparison.rules), its SQL (the pair and N-way queries), the rows, the API and the page."""

import csv
import io
import json
import math
import random
import re

import pytest
from django.urls import reverse

from monitor import payloads
from snapshots.comparison import rules
from snapshots.comparison.nway import NWayComparison, compare_columns, write_nway_csv
from snapshots.comparison.rows import Comparison, compare, write_csv
from snapshots.comparison.rules import ComparisonStatus as S
from snapshots.comparison.rules import compare_values, comparison_status, describe_difference, structure_differences
from squirrel_site import epics_values as ev
from squirrel_site.testing.snapshots import Structure, nt_table, structure

KIND = ev.Kind.STRUCTURE.value
NAN = math.nan


def table(setpoint=(1.0, 2.0, 3.0), device=("Q1", "Q2", "Q3"), enabled=(True, False, True), **extra):
    columns = {"device": ("as", list(device)), "setpoint": ("ad", list(setpoint)), "enabled": ("a?", list(enabled))}
    columns |= {name: ("ai", list(items)) for name, items in extra.items()}
    return nt_table(columns).text


BASE = table()

# name: (A, B, abs tolerance, rel tolerance, status, differences)
CASES = {
    "equal": (BASE, table(), 0.0, 0.0, S.EQUAL, []),
    "within": (BASE, table(setpoint=(1.0, 2.05, 3.0)), 0.1, 0.0, S.WITHIN, []),
    "within_rel": (BASE, table(setpoint=(1.005, 2.0, 3.02)), 0.0, 0.01, S.WITHIN, []),
    "one_out": (
        BASE,
        table(setpoint=(1.0, 2.5, 3.0)),
        0.1,
        0.0,
        S.OUT_OF_TOLERANCE,
        ["column `setpoint`: row 1 differs"],
    ),
    "two_out": (
        BASE,
        table(setpoint=(1.5, 2.0, 3.5)),
        0.1,
        0.0,
        S.OUT_OF_TOLERANCE,
        ["column `setpoint`: rows 0, 2 differ"],
    ),
    "column_added": (BASE, table(count=(1, 2, 3)), 1e9, 1.0, S.OUT_OF_TOLERANCE, ["column `count` added"]),
    "column_removed": (table(count=(1, 2, 3)), BASE, 1e9, 1.0, S.OUT_OF_TOLERANCE, ["column `count` removed"]),
    "rows_added": (
        BASE,
        table(setpoint=(1.0, 2.0, 3.0, 4.0), device=("Q1", "Q2", "Q3", "Q4"), enabled=(True, False, True, True)),
        1e9,
        1.0,
        S.OUT_OF_TOLERANCE,
        ["rows: 4, expected 3"],
    ),
    "text_column": (
        BASE,
        table(device=("Q1", "Q2", "QX")),
        1e9,
        1.0,
        S.OUT_OF_TOLERANCE,
        ["column `device`: row 2 differs"],
    ),
    "boolean_exact": (
        BASE,
        table(enabled=(True, True, True)),
        5.0,
        1.0,
        S.OUT_OF_TOLERANCE,
        ["column `enabled`: row 1 differs"],
    ),
    "nan_nan": (table(setpoint=(NAN, 2.0, 3.0)), table(setpoint=(NAN, 2.0, 3.0)), 0.0, 0.0, S.EQUAL, []),
    "nan_number": (
        table(setpoint=(NAN, 2.0, 3.0)),
        table(setpoint=(1.0, 2.0, 3.0)),
        1e300,
        1.0,
        S.OUT_OF_TOLERANCE,
        ["column `setpoint`: row 0 differs"],
    ),
    "integers_within": (table(count=(10, 20)), table(count=(11, 20)), 1.0, 0.0, S.WITHIN, []),
    "descriptor": (
        BASE,
        nt_table(
            {"device": ("as", ["Q1", "Q2", "Q3"]), "setpoint": ("ad", [1.0, 2.0, 3.0]), "enabled": ("a?", [1, 0, 1])},
            descriptor="other",
        ).text,
        0.0,
        0.0,
        S.OUT_OF_TOLERANCE,
        ["field `descriptor` differs", "column `enabled`: rows 0, 1, 2 differ"],
    ),
    "key_order": (BASE, BASE.replace('"id":"epics:nt/NTTable:1.0",', "") + "", 0.0, 0.0, None, None),
    "struct_equal": (structure("my:t", {"x": 1.5}).text, structure("my:t", {"x": 1.5}).text, 0.0, 0.0, S.EQUAL, []),
    "struct_field": (
        structure("my:t", {"x": 1.5, "sub": {"y": 2}}).text,
        structure("my:t", {"x": 1.5, "sub": {"y": 3}}).text,
        10.0,
        1.0,
        S.OUT_OF_TOLERANCE,
        ["field `sub.y` differs"],
    ),
    "struct_added": (
        structure("my:t", {"x": 1.5}).text,
        structure("my:t", {"x": 1.5, "z": "a"}).text,
        0.0,
        0.0,
        S.OUT_OF_TOLERANCE,
        ["the type differs", "field `z` added"],
    ),
    "table_and_struct": (BASE, structure("my:t", {"x": 1.5}).text, 0.0, 0.0, S.OUT_OF_TOLERANCE, ["a table in A only"]),
    "not_json": ("{not json", "{not json either", 0.0, 0.0, S.OUT_OF_TOLERANCE, ["the text differs (not typed JSON)"]),
}
# The same table with its fields in another order: another text, the same structure (field by field).
_reordered = '{"type":' + BASE.split('"type":', 1)[1].rsplit(',"value":', 1)[0]
CASES["key_order"] = (
    BASE,
    _reordered + ',"value":' + BASE.rsplit(',"value":', 1)[1][:-1] + ',"id":"epics:nt/NTTable:1.0"}',
    0.0,
    0.0,
    S.EQUAL,
    [],
)


@pytest.mark.parametrize("name", list(CASES))
def test_the_rule_compares_tables_column_by_column_and_says_where_they_differ(name):
    a, b, abs_tol, rel_tol, status, differences = CASES[name]
    assert compare_values(a, b, KIND, abs_tol, rel_tol) == status
    assert structure_differences(a, b, abs_tol, rel_tol) == differences


def test_the_key_order_case_is_another_text_of_the_same_table():
    a, b = CASES["key_order"][:2]
    assert a != b and ev.parse_structure(a) == ev.parse_structure(b)


def test_a_restore_verification_describes_a_structure_by_its_differences():
    a, b = CASES["two_out"][:2]
    assert describe_difference(a, b, KIND) == "column `setpoint`: rows 0, 2 differ"
    assert describe_difference(a, a, KIND) == "equal"


def test_many_differing_rows_are_counted_after_the_first_ten():
    a = table(setpoint=[0.0] * 30, device=["Q"] * 30, enabled=[True] * 30)
    b = table(setpoint=[1.0] * 30, device=["Q"] * 30, enabled=[True] * 30)
    (line,) = structure_differences(a, b)
    assert line == "column `setpoint`: rows 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, … (30 rows) differ"


def test_a_structure_is_shown_as_a_table_or_its_fields_not_as_json():
    text = table(setpoint=(1.5, NAN, 3.0))
    assert ev.display_text(KIND, text) == (
        'table 3×3: device ["Q1", "Q2", "Q3"], setpoint [1.5, NaN, 3], enabled [true, false, true]'
    )
    long = table(setpoint=range(8), device=["Q"] * 8, enabled=[True] * 8)
    assert "setpoint [0, 1, 2, 3, 4, … (8 values)]" in ev.display_text(KIND, long)
    assert "setpoint [0, 1, 2, 3, 4, 5, 6, 7]" in ev.display_text(KIND, long, full=True)
    assert ev.display_text(KIND, structure("my:t", {"x": 1.5, "sub": {"y": "a"}}).text) == '{x=1.5, sub={y="a"}}'
    assert ev.display_text(KIND, "{not json") == "{not json"
    many = table(setpoint=[1.0] * 100, device=["DEVICE-NAME"] * 100, enabled=[True] * 100)
    assert len(ev.display_text(KIND, many)) <= ev.STRUCTURE_CHARS_SHOWN


def test_non_finite_numbers_are_strict_json_and_read_back():
    text = ev.structure_text("x", [], {"v": [math.inf, -math.inf, NAN, 1.0]})
    assert "NaN" in text and ev.parse_structure(text) is not None  # no bare NaN literal
    assert [ev.number_of(x) for x in ev.parse_structure(text)["value"]["v"][:2]] == [math.inf, -math.inf]


# SQL: the pair and N-way queries give the statuses of the Python rule.


@pytest.fixture
def tables(make_snapshot, make_pvs):
    """Snapshots A and B of CASES (each its own registry PV with the case's tolerances)."""
    for name, (_, _, abs_tol, rel_tol, *_) in CASES.items():
        make_pvs(f"T:{name}", abs_tolerance=abs_tol, rel_tolerance=rel_tol)
    a = make_snapshot("A", {f"T:{name}": Structure(case[0]) for name, case in CASES.items()})
    b = make_snapshot("B", {f"T:{name}": Structure(case[1]) for name, case in CASES.items()})
    return a, b


@pytest.mark.django_db
def test_sql_statuses_are_the_rules_with_each_pvs_tolerances_and_with_overrides(tables):
    a, b = tables
    rows = {row.name: row for row in compare(Comparison(a=a, b=b), limit=None).rows}
    assert {name: row.status for name, row in rows.items()} == {f"T:{name}": case[4] for name, case in CASES.items()}
    assert {name: row.differences for name, row in rows.items()} == {
        f"T:{name}": case[5] for name, case in CASES.items()
    }
    for abs_tol, rel_tol in ((0.0, 0.0), (1.0, None), (None, 1.0), (1e9, 1e9)):
        for row in compare(Comparison(a=a, b=b, abs_tolerance=abs_tol, rel_tolerance=rel_tol), limit=None).rows:
            assert row.status == comparison_status(row.a, row.b, row.abs_tolerance, row.rel_tolerance), row.name


@pytest.mark.django_db
def test_status_filters_counts_and_sorting_use_the_structure_statuses(tables):
    a, b = tables
    page = compare(Comparison(a=a, b=b, statuses=frozenset({S.WITHIN}), sort="-status"), limit=2)
    expected_within = sorted(f"T:{name}" for name, case in CASES.items() if case[4] == S.WITHIN)
    assert page.total == len(expected_within) and page.counts[S.WITHIN] == len(expected_within)
    assert all(row.status == S.WITHIN for row in page.rows)


@pytest.mark.django_db
def test_sql_agrees_with_the_rule_on_random_tables(make_snapshot, make_pvs):
    rng = random.Random(20261207)
    pairs = {}
    for i in range(150):
        n = rng.randrange(0, 5)
        setpoint = [rng.choice([rng.uniform(-10, 10), 0.0, NAN, math.inf]) for _ in range(n)]
        changed = [x + rng.choice([0.0, 0.0, rng.uniform(-0.2, 0.2), 5.0]) for x in setpoint]
        device = [rng.choice("ABC") for _ in range(n)]
        other_device = [d if rng.random() < 0.9 else "Z" for d in device]
        enabled = [rng.random() < 0.5 for _ in range(n)]
        if rng.random() < 0.1:
            changed.append(1.0)
        pairs[f"R:{i:03d}"] = (table(setpoint, device, enabled), table(changed, other_device, enabled))
        make_pvs(f"R:{i:03d}", abs_tolerance=rng.choice([0.0, 0.1, 0.3]), rel_tolerance=rng.choice([0.0, 0.05]))
    a = make_snapshot("A", {name: Structure(x) for name, (x, _) in pairs.items()})
    b = make_snapshot("B", {name: Structure(y) for name, (_, y) in pairs.items()})
    rows = compare(Comparison(a=a, b=b), limit=None).rows
    assert len(rows) == len(pairs)
    statuses = set()
    for row in rows:
        assert row.status == comparison_status(row.a, row.b, row.abs_tolerance, row.rel_tolerance), row.name
        statuses.add(row.status)
    assert statuses == {S.EQUAL, S.WITHIN, S.OUT_OF_TOLERANCE}


@pytest.mark.django_db
def test_nway_columns_are_the_two_way_statuses(tables, make_snapshot):
    a, b = tables
    c = make_snapshot(
        "C", {f"T:{name}": Structure(case[0] if i % 2 else case[1]) for i, (name, case) in enumerate(CASES.items())}
    )
    page = compare_columns(NWayComparison(a, (b, c)), limit=None)
    for column, other in enumerate((b, c)):
        two_way = {row.name: row.status for row in compare(Comparison(a=a, b=other), limit=None).rows}
        assert {row.name: row.cells[column].status for row in page.rows} == two_way
    nway_row = next(row for row in page.rows if row.name == "T:one_out")
    assert nway_row.cells[0].differences == ["column `setpoint`: row 1 differs"]


# Rows as the API, the CSV and the page show them.


@pytest.mark.django_db
def test_the_api_row_says_which_columns_and_rows_differ(client, signed_in, tables):
    a, b = tables
    body = client.get("/api/v1/compare/", {"a": a.id, "b": b.id, "page_size": 100}).json()
    rows = {row["pv_name"]: row for row in body["results"]}
    one = rows["T:one_out"]
    assert one["status"] == S.OUT_OF_TOLERANCE and one["kind"] == KIND and one["delta"] is None
    assert one["differences"] == ["column `setpoint`: row 1 differs"]
    assert one["a"]["display"].startswith('table 3×3: device ["Q1", "Q2", "Q3"], setpoint [1, 2, 3]')
    assert one["b"]["value"] == CASES["one_out"][1]  # the typed JSON, whole
    assert rows["T:within"]["differences"] == [] and rows["T:within"]["status"] == S.WITHIN


@pytest.mark.django_db
def test_the_csv_writes_tables_whole_with_their_differences(tables):
    a, b = tables
    stream = io.StringIO()
    write_csv(Comparison(a=a, b=b, name="T:two_out"), stream)
    (_, row) = list(csv.reader(io.StringIO(stream.getvalue())))
    assert row[3].startswith("table 3×3: device") and row[5] == "column `setpoint`: rows 0, 2 differ"


@pytest.mark.django_db
def test_the_compare_page_shows_tables_and_their_differing_rows(client, signed_in, tables):
    a, b = tables
    response = client.get(reverse("snapshots:compare"), {"a": a.id, "b": b.id, "name": "T:one_out"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "column `setpoint`: row 1 differs" in html
    assert "table 3×3: device [&quot;Q1&quot;" in html and "epics:nt/NTTable" not in html


@pytest.mark.django_db
def test_against_live_values_the_same_rule_and_differences(client, signed_in, tables, live_values):
    a, _ = tables
    live_values({"T:one_out": Structure(CASES["one_out"][1]), "T:within": Structure(CASES["within"][1])})
    rows = {row.name: row for row in compare(Comparison(a=a, name="T:"), limit=None).rows}
    assert rows["T:one_out"].status == S.OUT_OF_TOLERANCE and rows["T:within"].status == S.WITHIN
    assert rows["T:one_out"].differences == ["column `setpoint`: row 1 differs"]
    assert rows["T:one_out"].b.display.startswith("table 3×3:")


@pytest.mark.django_db
def test_the_snapshot_page_and_the_live_tables_show_a_table_not_json(client, signed_in, tables):
    a, _ = tables
    html = client.get(reverse("snapshots:detail", args=[a.id]), {"name": "T:one_out"}).content.decode()
    assert "table 3×3: device [&quot;Q1&quot;, &quot;Q2&quot;, &quot;Q3&quot;], setpoint [1, 2, 3]" in html
    assert ">{&quot;id&quot;" not in html  # the typed JSON only in data-saved, for live.js
    # What the live tables get over /ws/live/ (monitor.payloads): the value whole, shown as a table.
    value = ev.Value("pva://T", KIND, CASES["one_out"][1])
    entry = json.loads("{" + payloads.value_entry("pva://T", value, None) + "}")["pva://T"]
    assert entry["display"] == 'table 3×3: device ["Q1", "Q2", "Q3"], setpoint [1, 2.5, 3], enabled [true, false, true]'
    assert entry["value"] == CASES["one_out"][1] and payloads.value_payload(value, None)["display"] == entry["display"]


def test_the_rule_matches_exactly_when_no_difference_is_said():
    """structures_within (the rule, and what the SQL applies tolerances to) and
    structure_differences (what the rows and live.js say) agree on every pair."""
    rng = random.Random(11)
    pairs = [(a, b, abs_tol, rel_tol) for a, b, abs_tol, rel_tol, *_ in CASES.values()]
    for _ in range(300):
        n = rng.randrange(4)
        setpoint = [rng.choice([rng.uniform(-3, 3), 0.0, NAN, -math.inf]) for _ in range(n)]
        changed = [x + rng.choice([0.0, rng.uniform(-0.1, 0.1), 2.0]) for x in setpoint]
        devices = [rng.choice("AB") for _ in range(n)]
        other = devices if rng.random() < 0.8 else [rng.choice("AB") for _ in range(n)]
        pairs.append((table(setpoint, devices, [True] * n), table(changed, other, [True] * n), 0.05, 0.01))
    for a, b, abs_tol, rel_tol in pairs:
        within = compare_values(a, b, KIND, abs_tol, rel_tol) != S.OUT_OF_TOLERANCE
        assert within == (not structure_differences(a, b, abs_tol, rel_tol)), (a, b)


@pytest.mark.django_db
def test_the_nway_csv_writes_tables_as_tables(tables):
    a, b = tables
    stream = io.StringIO()
    write_nway_csv(NWayComparison(a, (b,), name="T:one_out"), stream)
    header, row = list(csv.reader(io.StringIO(stream.getvalue())))
    cells = dict(zip(header, row, strict=True))
    assert [text[:10] for text in row if text.startswith("table")] == ["table 3×3:"] * 2, cells
    assert "epics:nt" not in stream.getvalue()
    assert "column `setpoint`: row 1 differs; setpoint[1]: 2 → 2.5" in row  # and the element beside A's


# N-way: an NTTable in three snapshots, its differing columns side by side.


@pytest.fixture
def three_tables(make_snapshot, make_pvs):
    make_pvs("T:table", abs_tolerance=0.1)
    a = make_snapshot("A", {"T:table": Structure(table())})
    # B: setpoint row 1 out of tolerance, row 2 within it; C: setpoint row 0 out, device row 2 changed.
    b = make_snapshot("B", {"T:table": Structure(table(setpoint=(1.0, 2.5, 3.05)))})
    c = make_snapshot("C", {"T:table": Structure(table(setpoint=(1.5, 2.0, 3.0), device=("Q1", "Q2", "Q9")))})
    return a, b, c


def test_columns_side_by_side_lists_each_differing_column_with_every_side():
    columns = rules.columns_side_by_side(
        table(),
        [table(setpoint=(1.0, 2.5, 3.05)), None, table(setpoint=(1.5, 2.0, 3.0), device=("Q1", "Q2", "Q9")), BASE],
        0.1,
    )
    assert columns == [
        ("device", [(2, '"Q3"', [('"Q3"', False), ("", False), ('"Q9"', True), ('"Q3"', False)])]),
        (
            "setpoint",
            [
                (0, "1", [("1", False), ("", False), ("1.5", True), ("1", False)]),
                (1, "2", [("2.5", True), ("", False), ("2", False), ("2", False)]),
            ],
        ),
    ]
    assert rules.columns_side_by_side(table(), [table(), None], 0.1) is None  # nothing differs
    assert rules.columns_side_by_side('{"not": "a table"}', [table()]) is None
    # Another table's columns (added, removed): said by structure_differences, not placed side by side.
    assert rules.columns_side_by_side(table(), [table(count=(1, 2, 3))]) is None
    # A longer table: its extra rows differ, beside nothing in A.
    longer = table(setpoint=(1.0, 2.0, 3.0, 4.0), device=("Q1", "Q2", "Q3", "Q4"), enabled=(True, False, True, True))
    (device, *_rest) = rules.columns_side_by_side(table(), [longer])
    assert device == ("device", [(3, "", [('"Q4"', True)])])


@pytest.mark.django_db
def test_the_nway_page_shows_a_tables_differing_columns_side_by_side(client, signed_in, three_tables):
    a, b, c = three_tables
    response = client.get(reverse("snapshots:compare"), {"a": a.id, "b": [b.id, c.id]})
    html = response.content.decode()
    assert response.status_code == 200
    (block,) = re.findall(r'<tr class="table-columns" data-table-of="T:table">(.*?)</details></td></tr>', html, re.S)
    tables = dict(re.findall(r'<table class="compact table-column" data-column="(\w+)">(.*?)</table>', block, re.S))
    assert list(tables) == ["device", "setpoint"]
    assert f"<th>A #{a.id}</th><th>#{b.id}</th><th>#{c.id}</th>" in tables["setpoint"]
    cells = re.findall(r"<tr><td>(\d+)</td><td>([^<]*)</td>(.*?)</tr>", tables["setpoint"], re.S)
    assert [(index, a_text) for index, a_text, _ in cells] == [("0", "1"), ("1", "2")]  # row 2 is within tolerance
    assert re.findall(r"<td([^>]*)>([^<]*)</td>", cells[1][2]) == [
        (' class="out-of-tolerance" title="differs from A (2)"', "2.5"),
        ("", "2"),
    ]
    assert "&quot;Q9&quot;" in tables["device"] and "epics:nt" not in block


@pytest.mark.django_db
def test_the_nway_csv_puts_each_differing_element_beside_the_reference(three_tables):
    a, b, c = three_tables
    stream = io.StringIO()
    write_nway_csv(NWayComparison(a, (b, c)), stream)
    header, row = list(csv.reader(io.StringIO(stream.getvalue())))
    cells = dict(zip(header, row, strict=True))
    assert cells[f"#{b.id} delta"] == "column `setpoint`: row 1 differs; setpoint[1]: 2 → 2.5"
    assert cells[f"#{c.id} delta"] == (
        'column `device`: row 2 differs; column `setpoint`: row 0 differs; device[2]: "Q3" → "Q9"; setpoint[0]: 1 → 1.5'
    )
