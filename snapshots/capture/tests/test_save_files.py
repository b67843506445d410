"""Save files of other tools imported as snapshots (autosave .sav, PSI and BURT .snap), the kind
rule, hostile files, and a snapshot exported as .sav and imported back."""

import csv
import io
import math
import re
from datetime import datetime
from pathlib import Path

import pytest
from django.utils import timezone

from snapshots.capture.exporters import export_snapshot_csv
from snapshots.capture.importers import SnapshotImportError, import_snapshot
from snapshots.capture.save_files import export_snapshot_sav
from snapshots.models import Snapshot, SnapshotValue
from squirrel_site.safe_csv import FORMULA_STARTS
from squirrel_site.testing.snapshots import Enum, nt_table

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fixtures"
FLOAT = re.compile(r"[+-]?[\d.]+(e[+-]?\d+)?")
HEADER = "# save/restore V5.10\tAutomatically generated - DO NOT MODIFY - 261207-231500\n"


def values_of(snapshot) -> dict[str, SnapshotValue]:
    return {value.pv_name: value for value in snapshot.values.all()}


def problems_of(filename, content, user) -> list[str]:
    with pytest.raises(SnapshotImportError) as caught:
        import_snapshot(filename, content, created_by=user)
    assert not Snapshot.objects.exists()
    return [str(problem) for problem in caught.value.problems]


def test_an_autosave_file_is_imported_with_its_kinds_disconnected_pvs_and_save_time(admin_user, make_pvs):
    make_pvs("SIM:MAG:Q0001:I_SP", "SIM:VAC:VGC0001:P")

    snapshot = import_snapshot("ioc.sav", (FIXTURES / "ioc.sav").read_bytes(), created_by=admin_user)

    saved = values_of(snapshot)
    assert (snapshot.title, snapshot.origin) == ("ioc", "imported")
    assert (snapshot.pv_count, snapshot.disconnected_count) == (10, 1)
    got = {name: (value.value_type, value.setpoint_value) for name, value in saved.items()}
    assert got == {
        "SIM:MAG:Q0001:I_SP": ("float", 12.5),
        "SIM:MAG:Q0001:I_SP.DESC": ("string", "Quad 1 current"),
        "SIM:TIM:EVR0001:EVENT_CODE": ("int", 40),
        "SIM:MAG:Q0001:STATE": ("int", 1),
        "SIM:TIM:TRG0001:LABEL": ("string", "Gun laser"),
        "SIM:RF:K0001:NOTE": ("string", ""),
        "SIM:RF:K0001:FF_TABLE": ("float_array", [0.5, -0.25, 1e-09, 3.0]),
        "SIM:TIM:EVR0001:OUT_NAMES": ("string_array", ["Gun laser", 'say "hi"', "back\\slash", ""]),
        "SIM:VAC:VGC0001:P": ("none", None),
        "OTHER:IOC:UNKNOWN": ("float", 7.25),  # X.VAL is the record X's value
    }
    assert "Search Issued" in saved["SIM:VAC:VGC0001:P"].reason
    assert not saved["SIM:VAC:VGC0001:P"].connected
    saved_at = timezone.make_aware(datetime(2026, 12, 7, 23, 15))
    assert {value.timestamp for value in saved.values()} == {saved_at}
    assert "autosave .sav file ioc.sav, saved 2026-12-07 23:15:00" in snapshot.comment
    assert saved["SIM:MAG:Q0001:I_SP"].pv is not None
    assert sorted(snapshot.unknown_pvs) == sorted(set(saved) - {"SIM:MAG:Q0001:I_SP", "SIM:VAC:VGC0001:P"})


def test_the_registry_pvs_saved_kind_wins_over_the_texts_shape(admin_user, make_pvs, make_snapshot):
    make_pvs("SIM:MAG:Q0001:I_SP", "SIM:MAG:Q0001:STATE", "SIM:TIM:EVR0001:EVENT_CODE")
    make_snapshot(
        "before",
        {"SIM:MAG:Q0001:I_SP": 1.5, "SIM:MAG:Q0001:STATE": Enum(0, ["Off", "On"]), "SIM:TIM:EVR0001:EVENT_CODE": 3},
    )
    text = HEADER + "SIM:MAG:Q0001:I_SP 5\nSIM:MAG:Q0001:STATE 1\nSIM:TIM:EVR0001:EVENT_CODE Kicker\n<END>\n"

    saved = values_of(import_snapshot("a.sav", text, created_by=admin_user))

    assert (saved["SIM:MAG:Q0001:I_SP"].value_type, saved["SIM:MAG:Q0001:I_SP"].setpoint_value) == ("float", 5.0)
    state = saved["SIM:MAG:Q0001:STATE"]
    assert (state.value_type, state.setpoint_value, state.setpoint_str) == ("enum", 1, "On")
    # Text that is no int is not forced into the known kind: the shape decides.
    assert saved["SIM:TIM:EVR0001:EVENT_CODE"].value_type == "string"


def test_without_a_snapshot_the_monitors_channel_kind_decides(admin_user, make_pvs, live_values):
    make_pvs("M:STATE", "M:I", "M:GONE")
    live_values({"M:STATE": Enum(2, ("Off", "On", "Standby")), "M:I": 1.5})
    text = HEADER + "M:STATE 2\nM:I 188\nM:GONE 7\n<END>\n"

    saved = values_of(import_snapshot("first.sav", text, created_by=admin_user))

    state = saved["M:STATE"]
    assert (state.value_type, state.setpoint_value, state.setpoint_str) == ("enum", 2, "Standby")
    assert (saved["M:I"].value_type, saved["M:I"].setpoint_value) == ("float", 188.0)  # "%.14g" wrote 188.0 as 188
    assert (saved["M:GONE"].value_type, saved["M:GONE"].setpoint_value) == ("int", 7)  # no channel: the shape


def test_an_unreachable_monitor_cache_leaves_the_shape_to_decide(admin_user, make_pvs, monkeypatch):
    import redis

    from monitor import live

    def refuse(*args, **kwargs):
        raise redis.ConnectionError("Connection refused")

    monkeypatch.setattr(live, "read_values_and_metadata", refuse)
    make_pvs("M:I")

    saved = values_of(import_snapshot("first.sav", HEADER + "M:I 188\n<END>\n", created_by=admin_user))

    assert (saved["M:I"].value_type, saved["M:I"].setpoint_value) == ("int", 188)


def test_a_psi_snapshot_file_keeps_the_kinds_its_json_says(admin_user):
    snapshot = import_snapshot("psi.snap", (FIXTURES / "psi.snap").read_bytes(), created_by=admin_user)

    saved = values_of(snapshot)
    got = {name: (value.value_type, value.setpoint_value) for name, value in saved.items()}
    assert got == {
        "SIM:MAG:Q0001:I_SP": ("float", 12.5),
        "SIM:TIM:EVR0001:EVENT_CODE": ("int", 40),
        "SIM:TIM:TRG0001:LABEL": ("string", "Gun laser"),
        "SIM:RF:K0001:FF_TABLE": ("float_array", [0.5, -0.25, 1e-09, 3.0]),
        "SIM:TIM:EVR0001:OUT_NAMES": ("string_array", ["Gun laser", "Kicker"]),
        "SIM:VAC:VGC0001:P": ("none", None),
    }
    assert (saved["SIM:MAG:Q0001:I_SP"].units, saved["SIM:MAG:Q0001:I_SP"].precision) == ("A", 3)
    assert "Before the quad scan" in snapshot.comment and "Labels: golden, physics" in snapshot.comment
    assert saved["SIM:MAG:Q0001:I_SP"].timestamp == datetime.fromisoformat("2026-12-07T22:10:00+00:00")


def test_a_burt_file_is_told_from_a_psi_one_by_its_content(admin_user):
    snapshot = import_snapshot("burt.snap", (FIXTURES / "burt.snap").read_bytes(), created_by=admin_user)

    saved = values_of(snapshot)
    got = {name: (value.value_type, value.setpoint_value) for name, value in saved.items()}
    assert got == {
        "SIM:MAG:Q0001:I_SP": ("float", 12.5),
        "SIM:TIM:EVR0001:EVENT_CODE": ("int", 40),
        "SIM:VAC:VGC0001:P": ("float", 1.5e-08),
        "SIM:TIM:TRG0001:LABEL": ("string", "Gun laser"),
        "SIM:RF:K0001:NOTE": ("string", ""),
        "SIM:RF:K0001:FF_TABLE": ("float_array", [0.5, -0.25, 1e-09]),
        "SIM:DIAG:BPM0001:TMIT_SPARE": ("none", None),
    }
    assert "BURT .snap file burt.snap" in snapshot.comment and "Injector before the shutdown" in snapshot.comment
    assert saved["SIM:MAG:Q0001:I_SP"].timestamp == timezone.make_aware(datetime(2026, 12, 7, 22, 10))


def test_crlf_bom_and_latin1_save_files_are_read(admin_user):
    text = HEADER + "M:NOTE Ångström\nM:A 1.5\n<END>\n"
    content = "\ufeff".encode() + text.replace("\n", "\r\n").encode("latin-1")

    saved = values_of(import_snapshot("crlf.sav", content, created_by=admin_user))

    assert {name: value.setpoint_value for name, value in saved.items()} == {"M:NOTE": "Ångström", "M:A": 1.5}


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("cut.sav", HEADER + "M:A 1\nM:B 2\n", "cut.sav:3: The file does not end with <END>"),
        ("arr.sav", HEADER + 'M:A @array@ { "1" "2"\nM:B 2\n<END>\n', "arr.sav:2: The array is not closed"),
        ("quote.sav", HEADER + 'M:A @array@ { "1 }\n<END>\n', "quote.sav:2: An array element's quote is not closed"),
        ("nul.sav", HEADER + "M:A 1\x00\n<END>\n", "nul.sav:2: The file contains a NUL character"),
        ("big.sav", HEADER + "M:A 1e400\n<END>\n", "big.sav:2: 'M:A': '1e400' is too large for a double."),
        ("long.sav", HEADER + "M:A " + "x" * 70_000 + "\n<END>\n", "long.sav:2: The value is longer than 65,536"),
        ("head.sav", "M:A 1\n<END>\n", "head.sav:1: Not an autosave file"),
        ("amp.sav", "&" + HEADER[1:] + "M:A 1\n<END>\n", "amp.sav:1: autosave was still writing"),
        ("bad.snap", '#{"comment": ""}\nM:A,[1, [2]]\n', "bad.snap:2: 'M:A': an array must hold only numbers"),
        ("json.snap", '#{"comment": ""}\nM:A,{nope\n', "json.snap:2: 'M:A': the value is not JSON"),
        ("b.snap", "--- Start BURT header\n--- End BURT header\nM:A 2 1\n", "b.snap:3: 'M:A': count 2 but 1"),
        ("h.snap", "--- Start BURT header\nM:A 1 1\n", "h.snap: The BURT header is not closed"),
    ],
)
def test_a_broken_save_file_stores_nothing_and_says_where(admin_user, name, content, expected):
    problems = problems_of(name, content, admin_user)

    assert any(problem.startswith(expected) for problem in problems), problems


def test_every_problem_of_a_save_file_is_listed_with_its_line(admin_user):
    content = HEADER + "M:A 1e400\nM:B @array@ [1]\nM:C 1\nM:C 2\n<END>\n"

    problems = problems_of("many.sav", content, admin_user)

    assert problems[0].startswith("many.sav:3: Expected '{' after @array@")
    assert "many.sav:2: 'M:A': '1e400' is too large for a double." in problems
    assert any(problem.startswith("many.sav:5: 'M:C': also on line 4") for problem in problems), problems


def test_a_formula_like_value_is_stored_as_text_and_exported_safely_in_csv(admin_user):
    snapshot = import_snapshot("f.sav", HEADER + "M:CMD =cmd|' /C calc'!A0\n<END>\n", created_by=admin_user)

    assert values_of(snapshot)["M:CMD"].setpoint_value == "=cmd|' /C calc'!A0"
    stream = io.StringIO(newline="")
    export_snapshot_csv(snapshot, stream)
    # As a spreadsheet reads the file: no cell it would evaluate.
    cells = [cell for row in csv.reader(io.StringIO(stream.getvalue())) for cell in row]
    assert "\"=cmd|' /C calc'!A0\"" in cells
    assert not [cell for cell in cells if cell.startswith(FORMULA_STARTS) and not FLOAT.fullmatch(cell)]


def test_a_snapshot_exported_as_sav_imports_back_to_the_same_values(admin_user, make_snapshot, make_pvs):
    make_pvs("RT:E")  # an enum is saved as its index: it reads back as an enum where the registry knows one
    original = make_snapshot(
        "round trip",
        {
            "RT:F": 0.1 + 0.2,
            "RT:TINY": -1e-310,
            "RT:NAN": math.nan,
            "RT:INF": -math.inf,
            "RT:I": -2147483648,
            "RT:E": Enum(1, ("Off", "On", "Fault")),
            "RT:S": "  spaced text  ",
            "RT:EMPTY": "",
            "RT:Q": 'He said "hi" \\ bye',
            "RT:FA": [1.0, 2.5, -3e-12],
            "RT:IA": [1, 2, 3],
            "RT:OFF": None,
            "RT:TABLE": nt_table({"x": ("ad", [1.0, 2.0])}),
            "RT:LINES": "two\nlines",
        },
    )
    SnapshotValue.objects.create(
        snapshot=original,
        pv_name="RT:SA",
        value_type="string_array",
        setpoint_str='["a b", "q\\"uote", "back\\\\slash", ""]',
        source="cache",
    )
    stream = io.StringIO()
    export_snapshot_sav(original, stream)
    text = stream.getvalue()

    assert text.startswith("# Squirrel export\tAutomatically generated - DO NOT MODIFY - ")
    assert text.endswith("<END>\n") and "\n! 1 channel(s) not connected" in text
    assert "# RT:TABLE skipped: a pvAccess structure" in text and "# RT:LINES skipped" in text
    assert "#RT:OFF Search Issued\n" in text

    back = values_of(import_snapshot("rt.sav", text, created_by=admin_user))
    before = values_of(original)
    del before["RT:TABLE"], before["RT:LINES"]
    assert set(back) == set(before)
    for name, value in before.items():
        restored = back[name]
        assert restored.value_type == value.value_type, name
        if value.value_type == "float" and math.isnan(value.setpoint_value):
            assert math.isnan(restored.setpoint_value)
        else:
            assert restored.setpoint_value == value.setpoint_value, name
    assert (back["RT:E"].setpoint_str, back["RT:E"].enum_labels) == ("On", ["Off", "On", "Fault"])
