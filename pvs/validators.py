"""Validation of EPICS addresses and per-PV tolerances.

An address is a channel name, optionally prefixed by its protocol (pvs.protocols):
``pva://NAME`` (pvAccess), ``ca://NAME`` or a bare ``NAME`` (Channel Access); the scheme is
case-insensitive. docs/pvaccess.md explains the rules to operators.
"""

import math
import re

from django.core.exceptions import ValidationError

from pvs.protocols import PVA, PVA_PREFIX, scheme_of

# EPICS record names: letters, digits and _ - + : [ ] < > ; (Application Developer's Guide,
# "Record Names"), at most 60 characters; then an optional .FIELD (upper-case letters and
# digits), optionally with the '$' suffix that asks for a long string.
RECORD_NAME_MAX = 60
FIELD_NAME_MAX = 16
# The longest channel name, either protocol: a Channel Access record.FIELD$ (78 characters).
# pvAccess has no limit of its own; its names (QSRV groups, record.FIELD) get the same bound.
NAME_MAX_LENGTH = RECORD_NAME_MAX + 1 + FIELD_NAME_MAX + 1
# The longest address, stored or written: a pvAccess name with its "pva://" (Channel Access is
# stored bare, and "ca://" is shorter).
ADDRESS_MAX_LENGTH = len(PVA_PREFIX) + NAME_MAX_LENGTH

_RECORD_RE = re.compile(r"[A-Za-z0-9_\-+:\[\]<>;]+")
_FIELD_RE = re.compile(r"[A-Z][A-Z0-9_]*\$?")
# A pvAccess name: printable ASCII without spaces, quotes (" ' `) or commas (every file format
# and list Squirrel reads separates addresses with commas, and a quote ends a name in a .req or
# CSV file).
_PVA_CHARS = r"!#-&(-+\--_a-~"
_PVA_NAME_RE = re.compile(rf"[{_PVA_CHARS}]+")
# Every valid address in one match: bulk imports and API requests check 50,000 at a time, and
# the character-by-character diagnosis below is only needed to explain an invalid one. A name
# never holds "://" ("pva://ca://X" is refused, not read as a pvAccess name "ca://X").
_CA_NAME = rf"[A-Za-z0-9_\-+:\[\]<>;]{{1,{RECORD_NAME_MAX}}}(?:\.[A-Z][A-Z0-9_]{{0,{FIELD_NAME_MAX - 1}}}\$?)?"
_PVA_NAME = rf"(?!.*://)[{_PVA_CHARS}]{{1,{NAME_MAX_LENGTH}}}"
_VALID_ADDRESS_RE = re.compile(rf"(?:(?i:ca)://)?{_CA_NAME}|(?i:pva)://{_PVA_NAME}")


def address_error(address: str) -> str | None:
    """Return why `address` is not a valid EPICS address, or None if it is."""
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
    protocol, name = scheme_of(address)
    if protocol is None:
        scheme = address.partition("://")[0]
        return (
            f"Unknown protocol {scheme + '://'!r}: write pva://NAME for pvAccess, ca://NAME or NAME for Channel Access."
        )
    if name != address and not name:
        return f"The channel name after {address.partition('://')[0] + '://'!r} is empty."
    if "://" in name:
        return "The address has more than one protocol prefix ('://'); write one: pva://NAME or ca://NAME."
    return _pva_name_error(name) if protocol == PVA else _ca_name_error(name)


def _ca_name_error(name: str) -> str | None:
    record, dot, field = name.partition(".")
    if len(record) > RECORD_NAME_MAX:
        return f"The record name is longer than {RECORD_NAME_MAX} characters."
    if not _RECORD_RE.fullmatch(record):
        bad = sorted({ch for ch in record if not _RECORD_RE.fullmatch(ch)})
        return (
            f"The record name contains characters Channel Access does not allow: {''.join(bad)!r}."
            if bad
            else ("The record name is empty.")
        )
    if dot:
        if not field:
            return "The field name after '.' is empty."
        if len(field.rstrip("$")) > FIELD_NAME_MAX or not _FIELD_RE.fullmatch(field):
            return "The field name must be upper-case letters and digits, like VAL or EGU."
    return None


def _pva_name_error(name: str) -> str | None:
    if len(name) > NAME_MAX_LENGTH:
        return f"The pvAccess name is longer than {NAME_MAX_LENGTH} characters."
    if not _PVA_NAME_RE.fullmatch(name):
        bad = sorted({ch for ch in name if not _PVA_NAME_RE.fullmatch(ch)})
        return f"The pvAccess name contains characters Squirrel does not allow: {''.join(bad)!r}."
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
