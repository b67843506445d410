"""Live values as text: precision, units, enum labels, shortened strings and arrays."""

import pytest

from monitor.display import display_text, enum_label, number_text
from squirrel_site.testing.values import make_meta, make_value


@pytest.mark.parametrize(
    "kind, value, meta, expected",
    [
        ("float", 1.23456, dict(units="mA", precision=2), "1.23 mA"),
        ("float", 1.23456, dict(units="", precision=0), "1"),
        ("float", 1234567.891, dict(units="V", precision=None), "1.23457e+06 V"),
        ("float", 0.000123456789, dict(units="", precision=None), "0.000123457"),
        ("float", 2.5e300, dict(units="", precision=3), "2.500e+300"),
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
