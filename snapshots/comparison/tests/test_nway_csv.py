# ruff: noqa: E501 (the expected CSV lines are kept whole, one line of the file per row)
"""The N-way CSV export's exact bytes (snapshots.comparison.nway.write_nway_csv): every value kind,
readbacks, units, precisions, missing and disconnected values, a live column, formula-like text.

EXPECTED was written by the row-by-row export (ComparisonRow.full_display and delta_full_display);
the faster export must write the same file byte for byte."""

import io

import pytest

from pvs.models import PV
from snapshots.capture.models import Snapshot, SnapshotValue
from snapshots.comparison import nway
from snapshots.comparison.nway import NWayComparison, write_nway_csv
from squirrel_site import safe_csv
from squirrel_site.testing.snapshots import Enum, saved_value

pytestmark = pytest.mark.django_db

INF, NAN = float("inf"), float("nan")


def _snapshot(admin_user, title: str, values: dict, units=None, precision=None, readbacks=None) -> Snapshot:
    """A snapshot of `values`; units/precision {name: ...}; readbacks {name: (readback name, value)}."""
    snapshot = Snapshot.objects.create(title=title, created_by=admin_user, mode="cache", pv_count=len(values))
    rows = []
    for name, value in values.items():
        row = saved_value(
            snapshot, name, value, units=(units or {}).get(name, ""), precision=(precision or {}).get(name)
        )
        if name.startswith("INT"):
            row.value_type = "int_array" if isinstance(value, list) else "int"
        if name in (readbacks or {}):
            row.readback_name, readback = readbacks[name]
            if isinstance(readback, list):
                row.readback_array = readback
            elif isinstance(readback, str):
                row.readback_str = readback
            elif isinstance(readback, Enum):
                row.readback_num, row.readback_str = readback.index, readback.labels[readback.index]
            elif readback is not None:
                row.readback_num = readback
        rows.append(row)
    SnapshotValue.objects.bulk_create(rows)
    return snapshot


@pytest.fixture
def snapshots(admin_user, make_pvs):
    make_pvs("F:A", "F:NAN", "F:INF", "F:BIG", "F:NOPREC", "INT:A", "INT:ARR", "E:A", "S:A", abs_tolerance=0.1)
    make_pvs("W:A", "W:SHORT", "D:A", "T:A", "ONLY:A", "ONLY:B", "=X", device="=HYPERLINK(1)", rel_tolerance=0.01)
    PV.objects.filter(setpoint_address="F:A").update(readback_address="F:A:RB")
    precision = {"F:A": 3, "W:A": 2, "F:BIG": 2, "INT:ARR": 0, "F:INF": 1}
    units = {"F:A": "mA", "W:A": "V", "F:BIG": "Hz", "INT:A": "counts", "E:A": "ignored"}
    a = _snapshot(
        admin_user,
        "Ref",
        {
            "F:A": 1.2345,
            "F:NAN": NAN,
            "F:INF": INF,
            "F:BIG": 1.5e16,
            "F:NOPREC": -0.000123456789,
            "INT:A": 7,
            "INT:ARR": [1, 2, 3],
            "E:A": Enum(1),
            "S:A": "=cmd|' /C calc'!A0",
            "W:A": [1.0, -2.5, 3.125],
            "W:SHORT": [1.0, 2.0],
            "D:A": None,
            "T:A": 5.0,
            "ONLY:A": 'a, "quoted"\nline',
            "=X": -1.5,
        },
        units=units,
        precision=precision,
        readbacks={"F:A": ("F:A:RB", 1.2), "E:A": ("E:A:RB", Enum(2)), "W:A": ("W:A:RB", [1.0, -2.0, 3.0])},
    )
    b = _snapshot(
        admin_user,
        "B",
        {
            "F:A": 1.3,
            "F:NAN": 2.0,
            "F:INF": INF,
            "F:BIG": 1.5e16 + 4.0,
            "F:NOPREC": 1e-12,
            "INT:A": 9,
            "INT:ARR": [1, 5, 3],
            "E:A": Enum(2),
            "S:A": "+text",
            "W:A": [1.0, -2.0, 3.5],
            "W:SHORT": [1.0, 2.0, 3.0],
            "D:A": 4.0,
            "T:A": "five",
            "ONLY:B": [0.5],
            "=X": -1.5,
        },
        units=units,
        precision=precision,
        readbacks={"F:A": ("F:A:RB", None), "S:A": ("S:A:RB", "@rb"), "INT:A": ("INT:A:RB", 8)},
    )
    c = _snapshot(
        admin_user,
        "C",
        {"F:A": 1.2346, "E:A": None, "S:A": "=cmd|' /C calc'!A0", "W:A": [1.0, -2.5, 3.125], "=X": 0.0},
        units=units,
        precision=precision,
    )
    return a, b, c


HEADER = "pv_name,device,reference #{a},reference readback,#{b},#{b} readback,#{b} delta,#{b} status,#{c},#{c} readback,#{c} delta,#{c} status,live,live readback,live delta,live status,#{a},#{a} readback,#{a} delta,#{a} status,abs_tolerance,rel_tolerance"
ROWS = [
    "'=X,'=HYPERLINK(1),-1.5,,-1.5,,0,Equal,0,,+1.5,Out of tolerance,no value in the live cache,,,Disconnected,-1.5,,0,Equal,0,0.01",
    "D:A,'=HYPERLINK(1),disconnected,,4,,,Disconnected,,,,Only in A,disconnected,,,Disconnected,disconnected,,,Disconnected,0,0.01",
    "E:A,,On,Fault,Fault,,,Out of tolerance,disconnected,,,Disconnected,Off,,,Out of tolerance,On,Fault,,Equal,0.1,0",
    "F:A,,1.234 mA,1.200 mA,1.300 mA,no readback saved,+0.066,Within tolerance,1.235 mA,,+1.000e-04,Within tolerance,1.25,1.24,+0.016,Within tolerance,1.234 mA,1.200 mA,0.000,Equal,0.1,0",
    "F:BIG,,1.50e+16 Hz,,1.50e+16 Hz,,+4.00,Out of tolerance,,,,Only in A,no value in the live cache,,,Disconnected,1.50e+16 Hz,,0.00,Equal,0.1,0",
    "F:INF,,Infinity,,Infinity,,0.0,Equal,,,,Only in A,no value in the live cache,,,Disconnected,Infinity,,0.0,Equal,0.1,0",
    "F:NAN,,NaN,,2,,NaN,Out of tolerance,,,,Only in A,no value in the live cache,,,Disconnected,NaN,,0,Equal,0.1,0",
    "F:NOPREC,,-0.000123457,,1e-12,,+0.000123457,Within tolerance,,,,Only in A,no value in the live cache,,,Disconnected,-0.000123457,,0,Equal,0.1,0",
    "INT:A,,7 counts,,9 counts,8 counts,+2,Out of tolerance,,,,Only in A,no value in the live cache,,,Disconnected,7 counts,,0,Equal,0.1,0",
    'INT:ARR,,"[1, 2, 3]",,"[1, 5, 3]",,"[0, +3, 0]",Out of tolerance,,,,Only in A,no value in the live cache,,,Disconnected,"[1, 2, 3]",,"[0, 0, 0]",Equal,0.1,0',
    'ONLY:A,\'=HYPERLINK(1),"a, ""quoted""\nline",,,,,Only in A,,,,Only in A,no value in the live cache,,,Disconnected,"a, ""quoted""\nline",,,Equal,0,0.01',
    "ONLY:B,'=HYPERLINK(1),,,[0.5],,,Only in B,,,,,no value in the live cache,,,Only in B,,,,,0,0.01",
    "S:A,,'=cmd|' /C calc'!A0,,'+text,'@rb,,Out of tolerance,'=cmd|' /C calc'!A0,,,Equal,'-live,,,Out of tolerance,'=cmd|' /C calc'!A0,,,Equal,0.1,0",
    "T:A,'=HYPERLINK(1),5,,five,,,Type changed,,,,Only in A,no value in the live cache,,,Disconnected,5,,0,Equal,0,0.01",
    'W:A,\'=HYPERLINK(1),"[1.00, -2.50, 3.12] V","[1.00, -2.00, 3.00] V","[1.00, -2.00, 3.50] V",,"[0.00, +0.50, +0.38]",Out of tolerance,"[1.00, -2.50, 3.12] V",,"[0.00, 0.00, 0.00]",Equal,"[1, 2]",,,Out of tolerance,"[1.00, -2.50, 3.12] V","[1.00, -2.00, 3.00] V","[0.00, 0.00, 0.00]",Equal,0,0.01',
    'W:SHORT,\'=HYPERLINK(1),"[1, 2]",,"[1, 2, 3]",,,Out of tolerance,,,,Only in A,no value in the live cache,,,Disconnected,"[1, 2]",,"[0, 0]",Equal,0,0.01',
]


def csv_text(comparison: NWayComparison) -> str:
    stream = io.StringIO()
    write_nway_csv(comparison, stream)
    return stream.getvalue()


def test_the_csv_bytes_are_the_row_by_row_export(snapshots, live_values, monkeypatch):
    a, b, c = snapshots
    live_values({"F:A": 1.25, "F:A:RB": 1.24, "E:A": Enum(0), "S:A": "-live", "W:A": [1.0, 2.0], "D:A": None})
    expected = "\r\n".join([HEADER.format(a=a.pk, b=b.pk, c=c.pk), *ROWS, ""])
    assert csv_text(NWayComparison(a, (b, c, None, a))) == expected
    monkeypatch.setattr(nway, "CSV_CHUNK", 3)
    assert csv_text(NWayComparison(a, (b, c, None, a))) == expected


def row_by_row(comparison: NWayComparison) -> str:
    """The export as it was written before: an NWayRow per PV, csv_cells of each."""
    stream = io.StringIO()
    writer = safe_csv.writer(stream)
    writer.writerow(nway.csv_header(comparison))
    keyed = nway._keyed_page(comparison, 0, None)[0]
    writer.writerows(nway.csv_cells(row) for row in nway._rows(comparison, keyed))
    return stream.getvalue()


def test_signed_zeros_repeated_waveforms_and_huge_deltas_as_row_by_row(admin_user, make_pvs):
    make_pvs("W:Z", "W:R", "W:H", "F:Z", "F:H", "F:T", abs_tolerance=0.0)
    precision = {"W:Z": 2, "W:R": 1, "W:H": 2, "F:Z": 2, "F:H": 2, "F:T": 2}
    units = {"W:R": "V", "F:T": "Torr"}
    values = [
        {"W:Z": [0.0, -0.0, 1.0], "W:R": [0.25, 0.5], "W:H": [9e14, 1.0], "F:Z": 0.0, "F:H": 9e14, "F:T": 3e-9},
        {"W:Z": [-0.0, 0.0, 1.0], "W:R": [0.25, 0.5], "W:H": [-9e14, 1.0], "F:Z": -0.0, "F:H": -9e14, "F:T": 3.5e-9},
        {"W:Z": [0.0, -0.0, 1.0], "W:R": [0.25, 0.75], "W:H": [NAN, INF], "F:Z": 0.0, "F:H": INF, "F:T": 0.0},
    ]
    readbacks = {"W:R": ("W:R:RB", [0.25, 0.5]), "W:Z": ("W:Z:RB", [-0.0, 0.0, 1.0])}
    a, b, c = (
        _snapshot(admin_user, f"S{i}", v, units=units, precision=precision, readbacks=readbacks)
        for i, v in enumerate(values)
    )
    comparison = NWayComparison(a, (b, c, a, b))
    text = csv_text(comparison)
    assert text == row_by_row(comparison)
    assert "[0.00, -0.00, 1.00]" in text and "[-0.00, 0.00, 1.00]" in text and "-1.80e+15" in text
    # A vacuum pressure with PREC 2 is not "0.00 Torr", nor its difference "+0.00".
    assert "F:T,,3.00e-09 Torr,,3.50e-09 Torr,,+5.00e-10,Out of tolerance,0.00 Torr,,-3.00e-09," in text
