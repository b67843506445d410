import math

import pytest
from django.core.exceptions import ValidationError

from pvs.validators import address_error, validate_address, validate_tolerance


@pytest.mark.parametrize(
    "address",
    ["SIM:MAG:Q01:I_SP", "LI24:KLYS:21:PDES", "X-1+[2]<3>;4", "SIM:AO1.VAL", "SIM:AO1.EGU", "SIM:S.NAME$", "a" * 60],
)
def test_valid_addresses_pass(address):
    assert address_error(address) is None


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("", "empty"),
        ("SIM:AO 1", "whitespace"),
        ("SIM:AO1\t", "whitespace"),
        ('SIM:"AO1"', "quote"),
        ("SIM:'AO1'", "quote"),
        ("SIM:AO1\x07", "control character"),
        ("a" * 61, "longer than 60"),
        ("SIM:AO1.", "field name after '.' is empty"),
        ("SIM:AO1.val", "upper-case"),
        ("SIM:AO1.VAL.X", "upper-case"),
        ("SIM:AO1.TOOLONGFIELDNAMEXXX", "upper-case"),
        ("SIM:A*O1", "does not allow"),
        ("SIM:A{1}", "does not allow"),
    ],
)
def test_invalid_addresses_say_why(address, reason):
    assert reason in address_error(address)


def test_validate_address_raises_validation_error():
    with pytest.raises(ValidationError, match="whitespace"):
        validate_address("A B")


@pytest.mark.parametrize("value", [0.0, 0.5, 1e9])
def test_tolerance_accepts_finite_non_negative(value):
    validate_tolerance(value)


@pytest.mark.parametrize(("value", "reason"), [(-0.1, "negative"), (math.nan, "finite"), (math.inf, "finite")])
def test_tolerance_rejects_negative_and_non_finite(value, reason):
    with pytest.raises(ValidationError, match=reason):
        validate_tolerance(value)
