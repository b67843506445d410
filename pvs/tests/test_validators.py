import math

import pytest
from django.core.exceptions import ValidationError

from pvs.validators import (
    _VALID_ADDRESS_RE,
    ADDRESS_MAX_LENGTH,
    NAME_MAX_LENGTH,
    address_error,
    validate_address,
    validate_tolerance,
)


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


# Protocols: pva://NAME is pvAccess, ca://NAME and NAME are Channel Access (pvs.protocols).


@pytest.mark.parametrize(
    "address",
    [
        "ca://SIM:MAG:Q01:I_SP",
        "CA://SIM:AO1.VAL",
        "Ca://SIM:S.NAME$",
        "pva://SIM:MAG:Q01:I_SP",
        "PVA://SIM:AO1.VAL",
        "pva://SIM:GROUP:orbit",  # a QSRV group
        "pva://SIM:AO1.VAL.value",  # any printable name pvAccess serves
        "pva://dev{1}$x|~%&!",
        "pva://" + "a" * 78,
        "ca://" + "a" * 60 + ".ABCDEFGHIJKLMNOP$",  # the longest Channel Access address, written with ca://
    ],
)
def test_addresses_may_say_their_protocol(address):
    assert address_error(address) is None


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("pva://", "The channel name after 'pva://' is empty."),
        ("ca://", "The channel name after 'ca://' is empty."),
        ("pva://pva://X", "more than one protocol prefix"),
        ("ca://pva://X", "more than one protocol prefix"),
        ("pva://X://Y", "more than one protocol prefix"),
        (
            "http://X",
            "Unknown protocol 'http://': write pva://NAME for pvAccess, ca://NAME or NAME for Channel Access.",
        ),
        ("pvas://X", "Unknown protocol 'pvas://'"),
        ("://X", "Unknown protocol '://'"),
        ("pva://A\x00B", "control character"),
        ("A\x00", "control character"),
        ("pva://A B", "whitespace"),
        ("pva://A\u2028B", "whitespace"),
        ("pva:// A", "whitespace"),
        ('pva://"A"', "quote"),
        ("pva://A`B", "quote"),
        ("pva://A,B", "The pvAccess name contains characters Squirrel does not allow: ','."),
        ("pva://Ä", "does not allow: 'Ä'"),
        ("pva://" + "a" * 79, "The pvAccess name is longer than 78 characters."),
        ("ca://SIM:A*O1", "Channel Access does not allow: '*'"),
        ("ca://SIM:AO1.val", "upper-case"),
        ("ca://" + "a" * 61, "longer than 60"),
    ],
)
def test_a_bad_protocol_or_name_says_why(address, reason):
    assert reason in address_error(address)


def test_the_longest_address_fits_the_field():
    assert ADDRESS_MAX_LENGTH == len("pva://") + NAME_MAX_LENGTH == 84
    assert address_error("pva://" + "a" * NAME_MAX_LENGTH) is None


@pytest.mark.parametrize("address", ["SIM:AO1", "ca://SIM:AO1", "pva://SIM:AO1", "pva://x,y", "http://x", "a b"])
def test_the_fast_path_agrees_with_the_diagnosis(address):
    # A valid address never reaches the character-by-character diagnosis, an invalid one always
    # gets a reason from it.
    assert (_VALID_ADDRESS_RE.fullmatch(address) is None) == (address_error(address) is not None)
