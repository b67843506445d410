"""The simulated IOC's generator (pvs.sim) and the run_sim_ioc command's arguments, with no IOC."""

import csv
import io
import re
from collections import Counter

import pytest
from django.core.management import CommandError, call_command

from pvs import sim
from pvs.validators import validate_address

RECORD = re.compile(r'^record\((\w+), "([^"]+)"\) \{\n(.*?)^\}\n', re.M | re.S)
FIELD = re.compile(r'field\((\w+), "((?:[^"\\]|\\.)*)"\)')


def records(database):
    """{record name: (record type, {field: value})} parsed back from the .db text."""
    return {name: (rtype, dict(FIELD.findall(body))) for rtype, name, body in RECORD.findall(database.db_text)}


@pytest.fixture(scope="module")
def database():
    return sim.generate(300)


def test_same_arguments_give_identical_output():
    first, second = sim.generate(300, seed=7), sim.generate(300, seed=7)
    assert first.db_text == second.db_text
    assert first.pvs == second.pvs
    assert first.array_values == second.array_values


def test_seed_changes_values_not_names():
    first, second = sim.generate(300, seed=1), sim.generate(300, seed=2)
    assert [pv.setpoint for pv in first.pvs] == [pv.setpoint for pv in second.pvs]
    assert [pv.value for pv in first.pvs] != [pv.value for pv in second.pvs]


def test_kind_counts_follow_shares_and_add_up():
    counts = sim.kind_counts(50_000)
    assert sum(counts.values()) == 50_000
    assert counts == {
        sim.PAIR: 32_748,
        sim.READONLY: 6000,
        sim.INT: 4000,
        sim.ENUM: 3500,
        sim.STRING: 2000,
        sim.CHANGING: 1000,
        sim.PROTECTED: 500,
        sim.WAVEFORM: 250,
        sim.STRING_WAVEFORM: 2,
    }


def test_small_simulation_has_every_kind(database):
    assert {pv.kind for pv in sim.generate(sim.MIN_PVS).pvs} == set(sim.CATALOGUE)
    assert len(database.pvs) == 300


def test_too_few_pvs_is_rejected():
    with pytest.raises(ValueError, match="at least 9 PVs"):
        sim.generate(sim.MIN_PVS - 1)


def test_record_count_matches_db_text(database):
    parsed = records(database)
    assert len(parsed) == database.record_count == database.db_text.count("record(")
    # 3 records per pair, 1 per other PV, 1 per dipole calibration
    pairs = len(database.of_kind(sim.PAIR)) + len(database.of_kind(sim.PROTECTED))
    configs = len({pv.config for pv in database.pvs if pv.config})
    assert database.record_count == 3 * pairs + (300 - pairs) + configs


def test_every_registry_address_is_a_valid_record(database):
    parsed = records(database)
    addresses = [a for pv in database.pvs for a in (pv.setpoint, pv.readback, pv.config) if a]
    for address in addresses:
        validate_address(address)
        assert address in parsed, address
    assert len({pv.setpoint for pv in database.pvs}) == len(database.pvs)


def test_prefix_starts_every_record_name():
    assert all(name.startswith("TEST:ACC:") for name in records(sim.generate(50, prefix="TEST:ACC:")))


def test_pv_names_are_device_and_signal(database):
    pv = next(pv for pv in database.of_kind(sim.PAIR) if pv.device == "MAG:Q0012")
    assert (pv.setpoint, pv.readback) == ("SIM:MAG:Q0012:I_SP", "SIM:MAG:Q0012:I_RB")
    assert pv.subsystems == ("Magnets",)
    assert pv.wait_for_completion


def test_record_types_per_kind(database):
    parsed = records(database)
    expected = {
        sim.PAIR: "ao",
        sim.PROTECTED: "ao",
        sim.READONLY: "ai",
        sim.CHANGING: "calc",
        sim.INT: "longout",
        sim.ENUM: "mbbo",
        sim.STRING: "stringout",
        sim.WAVEFORM: "waveform",
        sim.STRING_WAVEFORM: "waveform",
    }
    for pv in database.pvs:
        assert parsed[pv.setpoint][0] == expected[pv.kind], pv.setpoint
        if pv.readback:
            assert parsed[pv.readback][0] == "calc"


def test_readback_noise_stays_well_below_tolerance(database):
    parsed = records(database)
    for pv in database.of_kind(sim.PAIR) + database.of_kind(sim.PROTECTED):
        assert 0 < pv.noise <= pv.abs_tolerance / 10
        assert parsed[pv.readback][1]["CALC"] == f"A+(RNDM-0.5)*{2 * pv.noise:.10g}"
        assert 0.1 <= pv.delay <= 0.5
        assert float(parsed[pv.readback + "_DLY"][1]["ODLY"]) == pv.delay


def test_only_changing_pvs_scan_periodically(database):
    parsed = records(database)
    scanning = {name for name, (_, fields) in parsed.items() if fields.get("SCAN", "Passive") != "Passive"}
    assert scanning == {pv.setpoint for pv in database.of_kind(sim.CHANGING)}
    assert {parsed[name][1]["SCAN"] for name in scanning} == {"1 second"}


@pytest.mark.parametrize(("rate", "scan"), [(10, ".1 second"), (0.5, "2 second"), (0, "Passive")])
def test_change_rate_sets_scan_period(rate, scan):
    assert sim.scan_for_rate(rate) == scan


def test_unsupported_change_rate_is_rejected():
    with pytest.raises(ValueError, match="change rate must be 0 or one of"):
        sim.generate(50, change_rate=3)


def test_protected_setpoints_are_in_read_only_access_group(database):
    parsed = records(database)
    protected = {pv.setpoint for pv in database.of_kind(sim.PROTECTED)}
    in_group = {name for name, (_, fields) in parsed.items() if fields.get("ASG") == sim.PROTECTED_ASG}
    assert protected and in_group == protected
    assert not any(pv.read_only for pv in database.of_kind(sim.PROTECTED))
    group = database.acf_text.split(f"ASG({sim.PROTECTED_ASG})")[1]
    assert "READ" in group and "WRITE" not in group


def test_read_only_pvs_have_setpoint_address_only(database):
    for pv in database.of_kind(sim.READONLY) + database.of_kind(sim.CHANGING):
        assert pv.read_only and pv.setpoint and not pv.readback


def test_waveform_values_come_after_init(database):
    parsed = records(database)
    assert [name for name, _ in database.array_values] == [pv.setpoint for pv in database.of_kind(sim.WAVEFORM)]
    for name, values in database.array_values:
        assert 100 <= len(values) <= 1000
        assert parsed[name][1] == parsed[name][1] | {"FTVL": "DOUBLE", "NELM": str(len(values))}


def test_enum_records_carry_their_labels(database):
    parsed = records(database)
    pv = database.of_kind(sim.ENUM)[0]
    fields = parsed[pv.setpoint][1]
    assert [fields["ZRST"], fields["ONST"]] == list(pv.labels[:2])
    assert fields["VAL"] == str(pv.value)


def test_some_pvs_carry_two_area_tags(database):
    areas = Counter(len(pv.areas) for pv in database.pvs)
    assert areas[2] > 0 and areas[1] > 10 * areas[2]
    assert {a for pv in database.pvs for a in pv.areas} == set(sim.AREAS)
    assert {s for pv in database.pvs for s in pv.subsystems} == {"Magnets", "RF", "Vacuum", "Diagnostics", "Timing"}


def test_registry_csv_round_trips(database):
    out = io.StringIO()
    sim.write_registry_csv(database.pvs, out)
    text = out.getvalue()
    assert text.splitlines()[0] == ",".join(sim.CSV_HEADER)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == len(database.pvs)
    for row, pv in zip(rows, database.pvs, strict=True):
        assert row["Setpoint"] == pv.setpoint and row["Readback"] == pv.readback
        assert row["Read Only"] == ("true" if pv.read_only else "false")
        assert row["Wait For Completion"] in ("true", "false")
        assert float(row["Abs Tolerance"]) == pv.abs_tolerance
        assert row["Area"].split(",") == list(pv.areas)
    two_areas = next(pv for pv in database.pvs if len(pv.areas) == 2)
    assert f'"{",".join(two_areas.areas)}"' in text


def test_command_writes_registry_only(tmp_path):
    path = tmp_path / "registry.csv"
    call_command("run_sim_ioc", "--pvs", "50", "--registry-csv", str(path), "--registry-only", stdout=io.StringIO())
    rows = list(csv.DictReader(path.open()))
    assert [row["Setpoint"] for row in rows] == [pv.setpoint for pv in sim.generate(50).pvs]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pvs", "3", "--registry-csv", "x.csv", "--registry-only"], "at least 9 PVs"),
        (["--change-rate", "3", "--registry-csv", "x.csv", "--registry-only"], "change rate must be"),
        (["--registry-only"], "--registry-only needs --registry-csv"),
        (["--port", "70000"], "--port must be between"),
        (["--pvs", "50", "--registry-csv", "/nonexistent/dir/x.csv"], "cannot write"),
        (["--autosave", "x.sav", "--autosave-period", "0"], "--autosave-period must be positive"),
        (["--autosave", "/nonexistent/dir/x.sav"], "--autosave: no directory /nonexistent/dir"),
    ],
)
def test_command_rejects_bad_arguments(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("run_sim_ioc", *args)


def test_pressures_spread_over_decades(database):
    pressures = [pv for pv in database.pvs if pv.setpoint.split(":")[-1] in ("P", "P_LIVE")]
    assert pressures
    assert all(1e-9 <= pv.value <= 1e-7 for pv in pressures)
    assert all(pv.noise > 0 for pv in pressures if pv.kind == sim.CHANGING)


def test_string_waveforms_are_waveforms_of_strings_put_after_init(database):
    parsed = records(database)
    names = [pv.setpoint for pv in database.of_kind(sim.STRING_WAVEFORM)]
    assert names and [name for name, _ in database.string_array_values] == names
    for name, texts in database.string_array_values:
        assert 4 <= len(texts) <= 8 and all(isinstance(t, str) and len(t.encode()) < 40 for t in texts)
        assert parsed[name][1] == parsed[name][1] | {"FTVL": "STRING", "NELM": str(len(texts))}


def test_alarms_add_pvs_in_alarm_and_leave_the_others_unchanged():
    plain, demo = sim.generate(300, seed=3), sim.generate(300, seed=3, alarms=True)
    extra = [pv for pv in demo.pvs if pv.kind in (sim.ALARM, sim.OFFLINE)]
    assert [pv for pv in demo.pvs if pv not in extra] == plain.pvs
    assert len(extra) == len(sim.ALARM_PVS) and all(pv.read_only for pv in extra)
    parsed, plain_records = records(demo), records(plain)
    assert {name: record for name, record in parsed.items() if name in plain_records} == plain_records
    assert demo.record_count == len(parsed) == plain.record_count + len(sim.ALARM_PVS) - 1
    by_severity = {alarm.severity: sim._alarm_pv(alarm, "SIM:").setpoint for alarm in sim.ALARM_PVS}
    never = by_severity.pop("")
    assert never not in parsed and never in {pv.setpoint for pv in extra}
    minor, major, invalid = (parsed[by_severity[s]] for s in ("MINOR", "MAJOR", "INVALID"))
    # The constant input is past the limit whose severity is the one named.
    assert minor[0] == "ai" and float(minor[1]["INP"]) > float(minor[1]["HIGH"]) and minor[1]["HSV"] == "MINOR"
    assert float(major[1]["INP"]) > float(major[1]["HIHI"]) and major[1]["HHSV"] == "MAJOR"
    assert (invalid[1]["SIMM"], invalid[1]["SIMS"]) == ("YES", "INVALID")
    for pv in extra:
        validate_address(pv.setpoint)


def test_the_demo_registry_and_ioc_agree_on_the_alarm_pvs(tmp_path):
    path = tmp_path / "registry.csv"
    call_command(
        "run_sim_ioc", "--pvs", "20", "--alarms", "--registry-csv", str(path), "--registry-only", stdout=io.StringIO()
    )
    rows = list(csv.reader(path.open()))
    assert [row[0] for row in rows[1:]] == [pv.setpoint for pv in sim.generate(20, alarms=True).pvs]
    assert len(rows) == 1 + 20 + len(sim.ALARM_PVS)


def test_the_autosave_file_is_written_as_autosave_writes_one():
    from datetime import datetime

    values = [
        ("S:AO", 0.1 + 0.2),
        ("S:LONG", -7),
        ("S:MBBO", 2),
        ("S:TEXT", "two words"),
        ("S:WF", (1.0, 2.5e-09)),
        ("S:NAMES", ("Gun laser", 'say "hi"', "back\\slash")),
        ("S:GONE", None),
    ]
    saved_at = datetime(2026, 12, 7, 23, 15, 0).timestamp()  # local time, as the IOC's clock

    text = sim.autosave_text(values, saved_at)

    assert text.splitlines() == [
        f"# {sim.AUTOSAVE_VERSION}\tAutomatically generated - DO NOT MODIFY - 261207-231500",
        "! 1 channel(s) not connected - or not all gets were successful",
        "S:AO 0.3",  # "%.14g", as autosave writes a double
        "S:LONG -7",
        "S:MBBO 2",
        "S:TEXT two words",
        'S:WF @array@ { "1" "2.5e-09" }',
        'S:NAMES @array@ { "Gun laser" "say \\"hi\\"" "back\\\\slash" }',
        "#S:GONE Search Issued",
        "<END>",
    ]


def test_autosave_saves_the_settings_a_restore_writes_never_the_measurements():
    database = sim.generate(200, "AS:", 0, 0)

    saved = sim.autosave_pvs(database.pvs)

    kinds = {pv.setpoint: pv.kind for pv in database.pvs}
    assert {kinds[name] for name, _, _ in saved} == set(sim.AUTOSAVE_KINDS)
    assert not {name for name, _, _ in saved} & {pv.setpoint for pv in database.of_kind(sim.READONLY)}
    assert {(dbf, array) for name, dbf, array in saved if kinds[name] == sim.WAVEFORM} == {("DOUBLE", True)}
