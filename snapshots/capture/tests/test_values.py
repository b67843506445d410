"""Conversion between EPICS samples and SnapshotValue columns: no database, no Redis, no IOC."""

import math
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from monitor.live import LiveMeta
from snapshots.capture import values
from snapshots.models import SnapshotValue
from squirrel_site import epics_values as ev
from squirrel_site.epics_values import Value

T0 = 1_700_000_000.25
ROW = dict.fromkeys(values.ROW_COLUMNS)


def reading(kind="float", value=1.5, address="SIM:A", **overrides) -> Value:
    fields = dict(status=0, severity=0, timestamp=T0, received=T0 + 0.5)
    fields.update(overrides)
    return Value(address, kind, value, **fields)


def meta(**overrides) -> LiveMeta:
    fields = dict(
        units="mA",
        precision=3,
        enum_labels=None,
        lower_limit=None,
        upper_limit=None,
        host="",
        kind="float",
        count=1,
        read_access=True,
        write_access=True,
    )
    fields.update(overrides)
    return LiveMeta(**fields)


def as_dict(row: tuple) -> dict:
    return dict(zip(values.ROW_COLUMNS, row, strict=True))


@pytest.mark.parametrize(
    "kind, value, label, expected",
    [
        ("float", 2.5, None, ("float", 2.5, None, None)),
        ("float", math.inf, None, ("float", math.inf, None, None)),
        ("int", -7, None, ("int", -7.0, None, None)),
        ("enum", 2, "Open", ("enum", 2.0, "Open", None)),
        ("enum", 9, None, ("enum", 9.0, None, None)),
        ("string", "", None, ("string", None, "", None)),
        ("float_array", [0.5, math.nan], None, ("float_array", None, None, [0.5, math.nan])),
        ("int_array", [1, -2], None, ("int_array", None, None, [1, -2])),
        ("float", None, None, ("none", None, None, None)),
    ],
)
def test_value_columns_puts_each_kind_in_its_columns(kind, value, label, expected):
    result = ev.to_columns(kind, value, label)

    assert repr(result) == repr(expected)


def test_value_columns_refuses_string_arrays():
    with pytest.raises(ev.UnsupportedValue, match="string arrays"):
        ev.to_columns("string", ["a", "b"])


def test_enum_label_is_none_when_unknown_or_out_of_range():
    assert ev.enum_label(["Off", "On"], 1) == "On"
    assert ev.enum_label(["Off", "On"], 2) is None
    assert ev.enum_label(None, 0) is None


def test_pv_row_keeps_value_alarm_timestamp_metadata_and_age():
    row = as_dict(
        values.pv_row(
            7,
            "SIM:A",
            "SIM:A_RB",
            reading(severity=1, status=3),
            reading(value=1.25, address="SIM:A_RB"),
            meta(),
            "direct",
            T0 + 2.0,
        )
    )

    assert row == {
        **ROW,
        "pv_id": 7,
        "pv_name": "SIM:A",
        "readback_name": "SIM:A_RB",
        "value_type": "float",
        "setpoint_num": 1.5,
        "status": 3,
        "severity": 1,
        "timestamp": datetime.fromtimestamp(T0, UTC),
        "readback_num": 1.25,
        "readback_status": 0,
        "readback_severity": 0,
        "readback_timestamp": datetime.fromtimestamp(T0, UTC),
        "units": "mA",
        "precision": 3,
        "source": "direct",
        "age": 1.5,
        "connected": True,
        "reason": "",
    }


def test_pv_row_enum_stores_index_and_label_from_metadata():
    row = as_dict(
        values.pv_row(1, "SIM:E", "", reading("enum", 1), None, meta(enum_labels=["Off", "On"]), "cache", T0 + 1)
    )

    assert (row["value_type"], row["setpoint_num"], row["setpoint_str"], row["enum_labels"]) == (
        "enum",
        1.0,
        "On",
        ["Off", "On"],
    )


def test_pv_row_without_setpoint_is_disconnected_with_reason_and_no_value():
    row = as_dict(values.pv_row(1, "SIM:A", "", None, None, None, "direct", T0, "timeout"))

    assert row == {
        **ROW,
        "pv_id": 1,
        "pv_name": "SIM:A",
        "readback_name": "",
        "value_type": "none",
        "units": "",
        "source": "direct",
        "connected": False,
        "reason": "timeout",
    }


def test_pv_row_disconnected_setpoint_keeps_a_readback_that_was_read():
    row = as_dict(
        values.pv_row(1, "SIM:A", "SIM:A_RB", None, reading(value=3.0), None, "direct", T0 + 1, "disconnected")
    )

    assert (row["connected"], row["setpoint_num"], row["readback_num"], row["value_type"], row["age"]) == (
        False,
        None,
        3.0,
        "float",
        0.5,
    )


def test_pv_row_with_disconnected_readback_keeps_setpoint():
    row = as_dict(values.pv_row(1, "SIM:A", "SIM:A_RB", reading(), None, None, "cache", T0 + 1))

    assert (row["connected"], row["setpoint_num"], row["readback_num"], row["readback_timestamp"]) == (
        True,
        1.5,
        None,
        None,
    )


def test_pv_row_string_array_is_stored_without_value_and_says_why():
    row = as_dict(values.pv_row(1, "SIM:S", "", reading("string", ["a", "b"]), None, None, "cache", T0))

    assert (row["connected"], row["value_type"], row["reason"]) == (False, "none", "string arrays are not supported")


def test_pv_row_accepts_live_values_and_never_processed_records():
    live_value = Value("SIM:I", "int", 4, 0, 0, 0.0, T0, True)

    row = as_dict(values.pv_row(1, "SIM:I", "", live_value, None, None, "cache", T0 + 3))

    assert (row["value_type"], row["setpoint_num"], row["timestamp"], row["age"]) == ("int", 4.0, None, 3.0)


@pytest.mark.parametrize(
    "kind, value",
    [
        ("float", -0.1),
        ("int", 5),
        ("enum", 2),
        ("string", "Open ✓"),
        ("float_array", [0.1, 2e300]),
        ("int_array", [3, -4]),
        ("string_array", ["Gun laser", "", "✓"]),
    ],
)
def test_reading_of_gives_back_what_was_stored(kind, value):
    original = reading(kind, value, address="SIM:X", status=2, severity=1)
    row = as_dict(values.pv_row(1, "SIM:X", "", original, None, None, "direct", T0 + 1))
    stored = SnapshotValue(**{name: v for name, v in row.items() if name != "pv_id"})

    back = values.reading_of(stored, received=T0 + 0.5)

    assert back == original


def test_reading_of_readback_and_of_missing_values():
    stored = SimpleNamespace(
        value_type="float",
        readback_value=2.0,
        readback_name="SIM:RB",
        readback_timestamp=None,
        readback_status=0,
        readback_severity=0,
        setpoint_value=None,
    )

    assert values.reading_of(stored, readback=True) == Value("SIM:RB", "float", 2.0, 0, 0, 0.0, 0.0)
    assert values.reading_of(stored) is None
