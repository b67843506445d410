"""squirrel_site.untrusted: uploaded text and JSON from clients, read into readable errors."""

import json

import pytest
from django.http import QueryDict

from squirrel_site.untrusted import TextError, decode_text, parse_json, parse_json_prefix, query_has_nul


def test_decode_text_drops_a_byte_order_mark():
    assert decode_text("\ufeffA,B".encode()) == "A,B"


def test_decode_text_names_the_line_of_a_byte_that_is_not_utf8():
    with pytest.raises(TextError) as raised:
        decode_text(b"ok\nbad \xe9\n")

    assert (raised.value.line, raised.value.message) == (2, "Not UTF-8 text (byte 0xe9); save the file as UTF-8.")


def test_decode_text_names_the_line_of_a_nul_character():
    with pytest.raises(TextError) as raised:
        decode_text("a\nb\nc\x00\n")

    assert raised.value.line == 3 and "NUL character" in raised.value.message


def test_parse_json_reads_strict_json():
    assert parse_json('{"a": [1, 2.5, "x"]}') == {"a": [1, 2.5, "x"]}


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_parse_json_refuses_the_constants_strict_json_lacks(constant):
    with pytest.raises(ValueError, match=f'{constant} is not JSON; write "{constant}" as a string'):
        parse_json(f"[{constant}]")


def test_parse_json_refuses_a_nul_escape_but_not_an_escaped_backslash_before_u0000():
    assert parse_json(r'"\\u0000"') == "\\u0000"
    with pytest.raises(ValueError, match="NUL"):
        parse_json(r'"a\u0000"')


def test_parse_json_refuses_nesting_too_deep_for_the_parser():
    with pytest.raises(ValueError, match="nested too deeply"):
        parse_json("[" * 100_000 + "]" * 100_000)


def test_parse_json_keeps_the_line_of_malformed_text():
    with pytest.raises(json.JSONDecodeError) as raised:
        parse_json('{\n"a": }')

    assert raised.value.lineno == 2


def test_parse_json_prefix_finds_the_end_of_the_leading_value():
    assert parse_json_prefix('{"a": {"b": 1}}\nA:1\n') == 15


def test_parse_json_prefix_refuses_nesting_too_deep_for_the_parser():
    with pytest.raises(ValueError, match="nested too deeply"):
        parse_json_prefix("[" * 100_000)


@pytest.mark.parametrize("query, expected", [("a=1&b=x", False), ("a=%00", True), ("%00=1", True), ("a=1&a=%00", True)])
def test_query_has_nul_looks_at_every_name_and_value(query, expected):
    assert query_has_nul(QueryDict(query)) is expected
