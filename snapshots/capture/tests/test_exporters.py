"""Snapshot export to JSON and CSV and import back: lossless round trip, malformed files."""

import csv
import io
import json
import math
from datetime import UTC, datetime

import pytest

from monitor.live import LiveMeta
from pvs.models import PV
from snapshots.capture import values
from snapshots.capture.exporters import FIELDS, export_snapshot_csv, export_snapshot_json
from snapshots.capture.importers import SnapshotImportError, import_snapshot
from snapshots.capture.services import save_snapshot
from snapshots.models import Snapshot, SnapshotValue
from squirrel_site.epics_values import Value

pytestmark = pytest.mark.django_db

T0 = 1_700_000_000.123456
LABELS = ["Off", "On", ""]


def sample(kind, value, **overrides):
    fields = dict(status=0, severity=0, timestamp=T0, received=T0)
    fields.update(overrides)
    return Value("X", kind, value, **fields)


@pytest.fixture
def snapshot(admin_user):
    """A snapshot with a value of every kind, non-finite floats, alarms and disconnected PVs."""
    pv = PV.objects.create(setpoint_address="RT:FLOAT_SP", readback_address="RT:FLOAT_RB")

    def m(**kw):
        return LiveMeta(kw.get("units", ""), kw.get("precision"), kw.get("labels"), None, None, "", "", 1, True, True)

    rows = [
        values.pv_row(
            pv.id,
            "RT:FLOAT_SP",
            "RT:FLOAT_RB",
            sample("float", 0.1 + 0.2, severity=2, status=7),
            sample("float", -1e-310),
            m(units="mA", precision=4),
            "cache",
            T0 + 0.75,
        ),
        values.pv_row(None, "RT:NAN", "", sample("float", math.nan), None, m(), "direct", T0 + 1),
        values.pv_row(
            None, "RT:INF", "RT:INF_RB", sample("float", math.inf), sample("float", -math.inf), m(), "direct", T0 + 1
        ),
        values.pv_row(None, "RT:INT", "", sample("int", -2147483648), None, m(units="counts"), "cache", T0 + 2),
        values.pv_row(
            None, "RT:ENUM", "RT:ENUM_RB", sample("enum", 1), sample("enum", 2), m(labels=LABELS), "cache", T0 + 3
        ),
        values.pv_row(None, "RT:ENUM_NOLABEL", "", sample("enum", 5), None, m(labels=LABELS), "cache", T0 + 3),
        values.pv_row(None, "RT:STRING", "", sample("string", 'He said "hi", ✓\nnext'), None, m(), "cache", T0),
        values.pv_row(None, "RT:EMPTY", "", sample("string", ""), None, m(), "cache", T0),
        values.pv_row(
            None, "RT:FORMULA", "", sample("string", "=cmd|'/C calc'!A0"), None, m(units="=1+1"), "cache", T0
        ),
        values.pv_row(
            None, "RT:WAVE", "", sample("float_array", [0.1, math.nan, -math.inf, 1e300, -0.0]), None, m(), "direct", T0
        ),
        values.pv_row(None, "RT:IWAVE", "", sample("int_array", [1, -2, 3]), None, m(), "direct", T0),
        values.pv_row(None, "RT:NEVER", "", sample("float", 1.0, timestamp=0.0), None, m(), "cache", T0),
        values.pv_row(None, "RT:DOWN", "RT:DOWN_RB", None, sample("float", 4.5), m(), "direct", T0 + 1, "disconnected"),
        values.pv_row(None, "RT:GONE", "", None, None, None, "none", T0, "no value in cache"),
    ]
    return save_snapshot(
        title="Round trip",
        comment="all kinds",
        created_by=admin_user,
        mode="hybrid",
        origin="manual",
        tags=[],
        rows=rows,
    )


def stored(snapshot) -> dict[str, tuple]:
    """Every column that must survive a round trip, with floats compared by repr (NaN == NaN)."""
    columns = [name for name in values.ROW_COLUMNS if name != "pv_id"]
    return {
        row[0]: repr(row)
        for row in SnapshotValue.objects.filter(snapshot=snapshot).order_by("pv_name").values_list(*columns)
    }


@pytest.mark.parametrize("extension, export", [("json", export_snapshot_json), ("csv", export_snapshot_csv)])
def test_string_arrays_survive_export_and_import(admin_user, extension, export):
    names = ["Gun laser", "", 'He said "hi", ✓', "=cmd|'/C calc'!A0"]
    rows = [
        values.pv_row(
            None,
            "RT:NAMES",
            "RT:NAMES_RB",
            sample("string_array", names),
            sample("string_array", ["x"]),
            None,
            "direct",
            T0,
        ),
    ]
    saved = save_snapshot(
        title="Names", comment="", created_by=admin_user, mode="direct", origin="manual", tags=[], rows=rows
    )
    stream = io.StringIO(newline="")
    export(saved, stream)

    imported = import_snapshot(f"names.{extension}", stream.getvalue().encode(), created_by=admin_user)

    assert stored(imported) == stored(saved)
    value = imported.values.get()
    assert (value.value_type, value.setpoint_value, value.readback_value) == ("string_array", names, ["x"])


@pytest.mark.parametrize("extension, export", [("json", export_snapshot_json), ("csv", export_snapshot_csv)])
def test_export_then_import_gives_identical_values(snapshot, admin_user, extension, export):
    stream = io.StringIO(newline="")
    export(snapshot, stream)

    imported = import_snapshot(f"saved.{extension}", stream.getvalue().encode(), created_by=admin_user)

    assert stored(imported) == stored(snapshot)
    assert (imported.origin, imported.pv_count, imported.disconnected_count) == ("imported", 14, 2)
    assert imported.created_by == admin_user
    assert imported.values.get(pv_name="RT:FLOAT_SP").pv.setpoint_address == "RT:FLOAT_SP"
    assert imported.values.get(pv_name="RT:NAN").pv is None


def test_a_waveform_larger_than_csvs_default_cell_limit_round_trips_through_csv(admin_user):
    # 20,000 points are about 400 KB of JSON in one cell; Python's csv refuses cells over 128 KiB.
    row = values.pv_row(
        None, "RT:BIG", "", sample("float_array", [i / 7 for i in range(20_000)]), None, None, "direct", T0
    )
    original = save_snapshot(
        title="Big", comment="", created_by=admin_user, mode="direct", origin="manual", tags=[], rows=[row]
    )
    stream = io.StringIO(newline="")
    export_snapshot_csv(original, stream)

    imported = import_snapshot("big.csv", stream.getvalue().encode(), created_by=admin_user)

    assert stored(imported) == stored(original)


def test_json_export_is_strict_json_with_the_snapshot_fields(snapshot):
    stream = io.StringIO()
    export_snapshot_json(snapshot, stream)

    document = json.loads(stream.getvalue(), parse_constant=lambda name: pytest.fail(f"non-strict {name}"))

    assert (document["title"], document["comment"], document["mode"], document["created_by"]) == (
        "Round trip",
        "all kinds",
        "hybrid",
        "admin",
    )
    record = {r["pv_name"]: r for r in document["values"]}
    assert record["RT:WAVE"]["setpoint"] == [0.1, "NaN", "-Infinity", 1e300, -0.0]
    assert record["RT:ENUM"]["setpoint"] == 1 and record["RT:ENUM"]["setpoint_label"] == "On"
    assert record["RT:FLOAT_SP"]["timestamp"] == datetime.fromtimestamp(T0, UTC).isoformat()


def test_json_import_takes_title_and_comment_from_the_file_unless_given(snapshot, admin_user):
    stream = io.StringIO()
    export_snapshot_json(snapshot, stream)

    from_file = import_snapshot("x.json", stream.getvalue(), created_by=admin_user)
    given = import_snapshot("x.json", stream.getvalue(), created_by=admin_user, title="Mine")

    assert (from_file.title, from_file.comment, from_file.mode) == ("Round trip", "all kinds", "hybrid")
    assert given.title == "Mine"


def test_csv_import_titles_by_file_name_and_derives_the_mode(snapshot, admin_user):
    stream = io.StringIO(newline="")
    export_snapshot_csv(snapshot, stream)

    imported = import_snapshot("machine-2024.csv", stream.getvalue(), created_by=admin_user)

    assert (imported.title, imported.mode) == ("machine-2024", "hybrid")


def problems_of(filename, content, user) -> list[str]:
    with pytest.raises(SnapshotImportError) as caught:
        import_snapshot(filename, content, created_by=user)
    return [str(problem) for problem in caught.value.problems]


HEADER = ",".join(FIELDS)


def csv_line(**cells) -> str:
    base = {"pv_name": "M:A", "value_type": "float", "setpoint": "1.5", "source": "direct", "connected": "true"}
    base.update(cells)
    return ",".join(base.get(name, "") for name in FIELDS)


def test_malformed_csv_reports_every_problem_with_its_line_and_writes_nothing(admin_user):
    content = "\n".join(
        [
            HEADER,
            csv_line(),
            csv_line(pv_name="M:B", setpoint="abc"),
            csv_line(pv_name="bad name"),
            csv_line(pv_name="M:C", value_type="complex"),
            csv_line(pv_name="M:D", connected="false"),
            csv_line(pv_name="M:E", severity="9", timestamp="yesterday"),
            csv_line(pv_name="M:A"),
            "M:F,too,few",
        ]
    )

    problems = problems_of("bad.csv", content, admin_user)

    assert problems == [
        "bad.csv:3: setpoint: not valid JSON (Expecting value)",
        "bad.csv:9: Expected 20 cells, found 3.",
        "bad.csv:4: 'bad name': pv_name: The address contains whitespace.",
        "bad.csv:5: 'M:C': value_type: 'complex' is not one of float, int, enum, string, float_array, int_array,"
        " string_array, structure, none.",
        "bad.csv:6: 'M:D': a disconnected PV has no setpoint value.",
        "bad.csv:7: 'M:E': severity: 9 is not an alarm severity (0-3).",
        "bad.csv:7: 'M:E': timestamp: 'yesterday' is not an ISO 8601 time.",
        "bad.csv:8: 'M:A': also on line 2.",
    ]
    assert not Snapshot.objects.exists()


def test_csv_with_unknown_or_missing_columns_is_refused(admin_user):
    assert problems_of("x.csv", "pv_name,colour\nM:A,red\n", admin_user) == [
        f"x.csv:1: Header: unknown columns colour; missing columns value_type (expected {','.join(FIELDS)})."
    ]


def test_malformed_json_reports_records(admin_user):
    document = {
        "title": "x",
        "values": [
            {"pv_name": "M:A", "value_type": "int", "setpoint": 1.5, "source": "cache", "connected": True},
            {"pv_name": "M:B", "value_type": "float_array", "setpoint": [1, "x"], "colour": "red"},
            "not a record",
        ],
    }

    problems = problems_of("bad.json", json.dumps(document), admin_user)

    assert problems == [
        "bad.json: record 2: unknown fields colour.",
        "bad.json: record 3: expected an object.",
        "bad.json: record 1 (M:A): setpoint: 1.5 is not a whole number.",
        "bad.json: record 2 (M:B): setpoint: 'x' is not a number.",
    ]


@pytest.mark.parametrize(
    "filename, content, expected",
    [
        ("x.txt", "", "x.txt: Unknown file type '.txt': use .json, .csv, .sav, .snap."),
        (
            "x.json",
            "{",
            "x.json:1: Not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        ),
        (
            "x.json",
            '{"values": [{"pv_name": "M:A", "value_type": "float", "setpoint": NaN}]}',
            'x.json: Not valid JSON: NaN is not JSON; write "NaN" as a string',
        ),
        ("x.json", "[]", 'x.json: Expected an object with a "values" list (a Squirrel export).'),
        ("x.json", '{"values": []}', "x.json: The file holds no values."),
        ("x.csv", b"\xff\xfe", "x.csv:1: Not UTF-8 text (byte 0xff); save the file as UTF-8."),
        ("x.csv", "", "x.csv: The file is empty."),
    ],
)
def test_unreadable_files_are_refused(admin_user, filename, content, expected):
    assert problems_of(filename, content, admin_user) == [expected]


def test_csv_cells_a_spreadsheet_would_evaluate_are_written_as_text(snapshot):
    stream = io.StringIO(newline="")
    export_snapshot_csv(snapshot, stream)

    rows = {
        row[0]: dict(zip(FIELDS, row, strict=False)) for row in csv.reader(io.StringIO(stream.getvalue(), newline=""))
    }

    assert rows["RT:FORMULA"]["units"] == "'=1+1"
    assert not any(cell.startswith(("=", "+", "@")) for row in rows.values() for cell in row.values())
