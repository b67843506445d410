"""FastJSONRenderer writes what DRF's JSONRenderer writes, read back: the same values, the same types."""

import datetime
import json
import random
import struct
from decimal import Decimal

import pytest
from django.utils.translation import gettext_lazy
from rest_framework.exceptions import ErrorDetail
from rest_framework.renderers import JSONRenderer

from squirrel_site.renderers import FastJSONRenderer

TRICKY_FLOATS = [
    0.1 + 0.2,
    1e-05,
    3.5939131669993074e-05,
    1e15,
    1e16,
    1.2345678901234568e17,
    100.0,
    -0.0,
    5e-324,
    1.7976931348623157e308,
    1.4999999999999998,
    0.0221739622267955,
]


def read_back(rendered: bytes) -> str:
    """The JSON read back and written again by Python's json: equal when the values and their types are."""
    return json.dumps(json.loads(rendered))


def test_values_and_their_types_read_back_as_jsonrenderer_writes_them():
    data = {
        "floats": TRICKY_FLOATS,
        "ints": [0, -42, 2**53 + 1],
        "flags": [True, False, None],
        "text": ['Open "ü" \\ \n\t\x01 / ✓', "\u2028\u2029"],
        "nested": {"a": [{"b": []}], "c": {}},
        "when": datetime.datetime(2026, 1, 15, 12, 30, 5, 123400, tzinfo=datetime.UTC),
        "amount": Decimal("1.5"),
        "lazy": gettext_lazy("Not found."),
        "detail": ErrorDetail("Invalid token.", code="authentication_failed"),
    }

    assert read_back(FastJSONRenderer().render(data)) == read_back(JSONRenderer().render(data))


def test_every_float_reads_back_as_the_same_number():
    rng = random.Random(7)
    doubles = [struct.unpack("d", rng.getrandbits(64).to_bytes(8, "little"))[0] for _ in range(20_000)]
    finite = [x for x in doubles if x == x and abs(x) != float("inf")]

    assert json.loads(FastJSONRenderer().render(finite)) == finite


def test_line_and_paragraph_separators_are_escaped_as_jsonrenderer_does():
    assert FastJSONRenderer().render(["\u2028\u2029"]) == b'["\\u2028\\u2029"]'


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_floats_are_refused_as_jsonrenderer_refuses_them(value):
    with pytest.raises(ValueError):
        JSONRenderer().render([value])
    with pytest.raises(OverflowError):
        FastJSONRenderer().render([value])


def test_an_indent_asked_for_in_the_accept_header_is_honoured():
    rendered = FastJSONRenderer().render({"a": [1]}, "application/json; indent=2")

    assert rendered.decode().splitlines()[1].startswith("  ") and json.loads(rendered) == {"a": [1]}
