"""Validation of EPICS channel names and per-PV tolerances."""

import math
import re

from django.core.exceptions import ValidationError

from pvs.protocols import PVA_PREFIX

# EPICS record names: letters, digits and _ - + : [ ] < > ; (Application Developer's Guide,
# "Record Names"), at most 60 characters; then an optional .FIELD (upper-case letters and
# digits), optionally with the '$' suffix that asks for a long string.
RECORD_NAME_MAX = 60
FIELD_NAME_MAX = 16
ADDRESS_MAX_LENGTH = RECORD_NAME_MAX + 1 + FIELD_NAME_MAX + 1
_RECORD_RE = re.compile(r"[A-Za-z0-9_\-+:\[\]<>;]+")
_FIELD_RE = re.compile(r"[A-Z][A-Z0-9_]*\$?")
# Every valid address in one match: bulk imports and API requests check 50,000 at a time, and
# the character-by-character diagnosis below is only needed to explain an invalid one.
_VALID_ADDRESS_RE = re.compile(
    rf"[A-Za-z0-9_\-+:\[\]<>;]{{1,{RECORD_NAME_MAX}}}(?:\.[A-Z][A-Z0-9_]{{0,{FIELD_NAME_MAX - 1}}}\$?)?"
)


def address_error(address: str) -> str | None:
    """Return why `address` is not a valid EPICS channel name, or None if it is."""
    if _VALID_ADDRESS_RE.fullmatch(address):
        return None
    if address.startswith(PVA_PREFIX):  # a pvAccess name, held to the Channel Access rules for now
        address = address[len(PVA_PREFIX) :]
        if _VALID_ADDRESS_RE.fullmatch(address):
            return None
    if not address:
        return "The address is empty."
    for ch in address:
        if ch.isspace():
            return "The address contains whitespace."
        if ch in "\"'`":
            return "The address contains a quote."
        if ord(ch) < 32 or ord(ch) == 127:
            return "The address contains a control character."
    record, dot, field = address.partition(".")
    if len(record) > RECORD_NAME_MAX:
        return f"The record name is longer than {RECORD_NAME_MAX} characters."
    if not _RECORD_RE.fullmatch(record):
        bad = sorted({ch for ch in record if not _RECORD_RE.fullmatch(ch)})
        return (
            f"The record name contains characters EPICS does not allow: {''.join(bad)!r}."
            if bad
            else ("The record name is empty.")
        )
    if dot:
        if not field:
            return "The field name after '.' is empty."
        if len(field.rstrip("$")) > FIELD_NAME_MAX or not _FIELD_RE.fullmatch(field):
            return "The field name must be upper-case letters and digits, like VAL or EGU."
    return None


def validate_address(address: str) -> None:
    """Django validator for setpoint, readback and config addresses."""
    error = address_error(address)
    if error:
        raise ValidationError(error, code="invalid_address")


def validate_tolerance(value: float) -> None:
    """Tolerances are finite and not negative."""
    if value is None:
        return
    if not math.isfinite(value):
        raise ValidationError("The tolerance must be a finite number.", code="invalid_tolerance")
    if value < 0:
        raise ValidationError("The tolerance may not be negative.", code="invalid_tolerance")
