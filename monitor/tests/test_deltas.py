"""Differences as the pages show them: signed, with units."""

import pytest

from monitor.deltas import delta_text


@pytest.mark.parametrize(
    ("delta", "precision", "units", "expected"),
    [
        (0.5, 2, "mA", "+0.50 mA"),
        (-0.5, 2, "mA", "-0.50 mA"),
        (0.0, 2, "", "0.00"),
        (3, None, "V", "+3 V"),
        (float("nan"), None, "V", "NaN V"),
        (float("inf"), None, "", "+Infinity"),
    ],
)
def test_a_delta_is_signed_and_carries_its_units(delta, precision, units, expected):
    assert delta_text(delta, precision, units) == expected
