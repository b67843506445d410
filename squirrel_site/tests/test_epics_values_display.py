"""Values as text (squirrel_site.epics_values): precision, units, enum labels, shortened strings and arrays."""

import pytest

from squirrel_site.epics_values import delta_text, number_text
from squirrel_site.epics_values import label_of as enum_label
from squirrel_site.epics_values import text_of as display_text
from squirrel_site.testing.values import make_meta, make_value


@pytest.mark.parametrize(
    "kind, value, meta, expected",
    [
        ("float", 1.23456, dict(units="mA", precision=2), "1.23 mA"),
        ("float", 1.23456, dict(units="", precision=0), "1"),
        ("float", 1234567.891, dict(units="V", precision=None), "1.23457e+06 V"),
        ("float", 0.000123456789, dict(units="", precision=None), "0.000123457"),
        ("float", 2.5e300, dict(units="", precision=3), "2.500e+300"),
        ("float", 3e-9, dict(units="Torr", precision=2), "3.00e-09 Torr"),
        ("float", 3e-9, dict(units="Torr", precision=None), "3e-09 Torr"),
        ("float_array", [3e-9, 0.0, 0.5], dict(units="Torr", precision=1), "[3.0e-09, 0.0, 0.5] Torr"),
        ("float", float("nan"), dict(units="mA", precision=3), "NaN mA"),
        ("float", float("-inf"), dict(units="", precision=3), "-Infinity"),
        ("int", 42, dict(units="counts", precision=None), "42 counts"),
        ("enum", 1, dict(enum_labels=["Off", "On"]), "On"),
        ("enum", 5, dict(enum_labels=["Off", "On"]), "5"),
        ("string", "Open", dict(units="ignored"), "Open"),
        ("float_array", [1.0, 2.0], dict(units="mm", precision=1), "[1.0, 2.0] mm"),
        (
            "float_array",
            [float(i) for i in range(1000)],
            dict(units="", precision=1),
            "[0.0, 1.0, 2.0, 3.0, 4.0, … (1000 values)]",
        ),
        ("int_array", [7], dict(units="", precision=None), "[7]"),
    ],
)
def test_display_text_of_each_kind(kind, value, meta, expected):
    assert display_text(make_value(kind=kind, value=value), make_meta(**meta)) == expected


def test_without_metadata_numbers_get_six_significant_digits():
    assert display_text(make_value(value=3.14159265), None) == "3.14159"


def test_no_value_shows_nothing():
    assert display_text(None, None) == ""
    assert display_text(make_value(kind="", value=None, connected=False), None) == ""


def test_a_disconnected_channel_still_shows_its_last_value():
    assert display_text(make_value(value=2.0, connected=False), make_meta(precision=1, units="")) == "2.0"


def test_long_strings_are_shortened():
    text = display_text(make_value(kind="string", value="x" * 200), None)
    assert len(text) == 80 and text.endswith("…")


def test_enum_label_only_for_enums_with_a_label_at_that_index():
    labels = make_meta(enum_labels=["Off", "On"])
    assert enum_label(make_value(kind="enum", value=0), labels) == "Off"
    assert enum_label(make_value(kind="enum", value=2), labels) is None
    assert enum_label(make_value(kind="int", value=0), labels) is None
    assert enum_label(make_value(kind="enum", value=0), None) is None


def test_number_text_keeps_integers_whole():
    assert number_text(10**20, 3) == "100000000000000000000"


@pytest.mark.parametrize(
    ("number", "precision", "expected"),
    [
        # A number other than 0 that `precision` decimals would show as zeros: the exponent form.
        (3e-9, 2, "3.00e-09"),
        (-3e-9, 2, "-3.00e-09"),
        (0.004, 2, "4.00e-03"),
        (0.4, 0, "4e-01"),
        (-0.0004, 3, "-4.000e-04"),
        (1e-20, 3, "1.000e-20"),
        # One that shows a digit other than 0, and zero, fixed-point as before.
        (0.006, 2, "0.01"),
        (-0.00085, 3, "-0.001"),
        (0.6, 0, "1"),
        (0.01, 2, "0.01"),
        (0.0101, 2, "0.01"),
        (0.0, 2, "0.00"),
        (-0.0, 2, "-0.00"),
        (1.0, 0, "1"),
        # Huge: the exponent form from FIXED_POINT_LIMIT (1e15) on.
        (999999999999999.0, 1, "999999999999999.0"),
        (1e15, 1, "1.0e+15"),
    ],
)
def test_a_number_too_small_for_its_precision_shows_its_exponent(number, precision, expected):
    assert number_text(number, precision) == expected


@pytest.mark.parametrize(
    ("delta", "precision", "units", "expected"),
    [
        (0.5, 2, "mA", "+0.50 mA"),
        (-0.5, 2, "mA", "-0.50 mA"),
        (0.0, 2, "", "0.00"),
        (2e-10, 2, "Torr", "+2.00e-10 Torr"),
        (-2e-10, 2, "Torr", "-2.00e-10 Torr"),
        (3, None, "V", "+3 V"),
        (float("nan"), None, "V", "NaN V"),
        (float("inf"), None, "", "+Infinity"),
    ],
)
def test_a_delta_is_signed_and_carries_its_units(delta, precision, units, expected):
    assert delta_text(delta, precision, units) == expected
