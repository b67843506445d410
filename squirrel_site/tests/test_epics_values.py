"""squirrel_site/epics_values.py: the kinds and each medium's codec (pure, no services)."""

import math
import struct
from pathlib import Path

import msgpack
import pytest
from django.conf import settings

from squirrel_site import epics_values as ev
from squirrel_site.epics_values import Kind, Value

# One value of each kind, as Channel Access delivers it.
EXAMPLES = {
    "float": 2.5,
    "int": -7,
    "enum": 2,
    "string": "hello",
    "float_array": [1.0, math.nan, -math.inf],
    "int_array": [1, -2, 3],
    "string_array": ["Gun laser", "", 'ü, "quoted"'],
    # pvAccess: a structure of no other kind, as its typed JSON text (pvs.pva_bulk)
    "structure": ev.structure_text("epics:nt/NTTable:1.0", [["labels", "as"]], {"labels": ["ü"]}),
}


def test_every_kind_has_a_spec_and_an_example():
    assert set(Kind) == set(ev.SPECS) == set(EXAMPLES)
    assert {spec.compare for spec in ev.SPECS.values()} == set(ev.COMPARE_CATEGORIES)
    assert ev.kinds(compare=ev.NUMBER) | ev.kinds(compare=ev.NUMBER_ARRAY) <= set(ev.SPECS)
    assert ev.kinds(column=ev.NUM) | ev.kinds(column=ev.STR) | ev.kinds(column=ev.ARRAY) == set(ev.SPECS)
    assert all(kind == spec.kind for kind, spec in ev.SPECS.items())
    assert ev.kinds(labelled=True) == {"enum"} and ev.is_labelled("enum") and not ev.is_labelled("none")
    # A restore writes every kind but a structure; an unknown kind is the channel's to refuse.
    assert ev.kinds(writable=False) == {"structure"}
    assert not ev.is_writable("structure") and ev.is_writable("enum") and ev.is_writable("unknown")


def test_choices_are_the_kinds_and_none():
    assert [value for value, _ in ev.choices()] == [*ev.SPECS, "none"]
    assert dict(ev.choices())["enum"] == "Enum (index and label)"


@pytest.mark.parametrize("kind", list(EXAMPLES))
def test_redis_round_trip(kind):
    value = Value("A:B", kind, EXAMPLES[kind], 3, 1, 1700000000.25, 1700000000.5, True)
    back = ev.unpack("A:B", ev.pack(value))
    assert back.kind == kind and ev.to_json(back.value) == ev.to_json(value.value)
    assert (back.status, back.severity, back.timestamp, back.received, back.connected) == (
        3,
        1,
        1700000000.25,
        1700000000.5,
        True,
    )


def test_redis_keeps_the_packed_layout():
    # What monitors already wrote must still decode after an upgrade: the layout does not move.
    raw = msgpack.packb(["float", 1.5, 0, 0, 10.0, 11.0, False])
    assert ev.unpack("X", raw) == Value("X", "float", 1.5, 0, 0, 10.0, 11.0, False)


@pytest.mark.parametrize("kind", list(EXAMPLES))
def test_columns_round_trip(kind):
    value_type, num, text, arr = ev.to_columns(kind, EXAMPLES[kind], "On" if kind == "enum" else None)
    assert value_type == kind
    assert ev.to_json(ev.from_columns(kind, num, text, arr)) == ev.to_json(EXAMPLES[kind])


def test_columns_of_each_kind():
    assert ev.to_columns("float", 2) == ("float", 2.0, None, None)
    assert ev.to_columns("int", -7) == ("int", -7.0, None, None)
    assert ev.to_columns("enum", 1, "On") == ("enum", 1.0, "On", None)
    assert ev.to_columns("string", "x") == ("string", None, "x", None)
    assert ev.to_columns("int_array", (1, 2)) == ("int_array", None, None, [1, 2])
    assert ev.to_columns("float", None) == ("none", None, None, None)
    assert ev.from_columns("int_array", None, None, [1.0, 2.0]) == [1, 2]
    assert ev.from_columns("none", 1.0, "x", [1.0]) is None


def test_columns_refuse_what_is_not_of_its_kind():
    with pytest.raises(ev.UnsupportedValue, match="string arrays"):
        ev.to_columns("string", ["a", "b"])
    with pytest.raises(ev.UnsupportedValue, match="unknown value kind 'blob'"):
        ev.to_columns("blob", 1)


def test_fit_columns_converts_a_live_value_where_it_fits():
    assert ev.fit_columns("float", [3]) == (3.0, None, None)
    assert ev.fit_columns("float_array", 3) == (None, None, [3.0])
    assert ev.fit_columns("enum", 2) == (2.0, None, None)
    assert ev.fit_columns("string", 5) == (None, "5", None)
    assert ev.fit_columns("float", "abc") == (None, None, None)
    assert ev.fit_columns("float", [1, 2]) == (None, None, None)
    assert ev.fit_columns("none", 1) == (None, None, None)
    assert ev.fit_columns("float", None) == (None, None, None)


def test_json_spells_non_finite_numbers():
    assert ev.to_json([1.0, math.nan, math.inf, -math.inf]) == [1.0, "NaN", "Infinity", "-Infinity"]
    assert ev.to_json("x") == "x"


def test_display_text():
    assert ev.display_text("float", 1.23456789) == "1.23457"
    assert ev.display_text("float", 1.5, precision=3, units="A") == "1.500 A"
    assert ev.display_text("enum", 1, enum_labels=["Off", "On"], units="A") == "On"
    assert ev.display_text("enum", 5, enum_labels=["Off", "On"]) == "5"
    assert ev.display_text("string", "x" * 100) == "x" * 79 + "…"
    assert ev.display_text("string", "x" * 100, full=True) == "x" * 100
    assert ev.display_text("int_array", list(range(7))) == "[0, 1, 2, 3, 4, … (7 values)]"
    assert ev.display_text("int_array", list(range(7)), full=True) == "[0, 1, 2, 3, 4, 5, 6]"
    assert ev.display_text("float", None) == ""
    assert ev.number_text(math.nan) == "NaN" and ev.number_text(1e300, 3) == "1.000e+300"


def test_kind_of_a_channel():
    assert ev.kind_of_native(ev.DBR_DOUBLE, 1) == "float"
    assert ev.kind_of_native(ev.DBR_FLOAT, 10) == "float_array"
    assert ev.kind_of_native(ev.DBR_LONG, 1) == "int"
    assert ev.kind_of_native(ev.DBR_ENUM, 1) == "enum"
    assert ev.kind_of_native(ev.DBR_CHAR, 8) == "int_array"
    assert ev.kind_of_native(ev.DBR_STRING, 1) == "string"


# Channel Access puts (moved here with the encoder from pvs/epics_bulk.py, same assertions)
DBR_STRING, DBR_SHORT, DBR_FLOAT, DBR_ENUM, DBR_CHAR, DBR_LONG, DBR_DOUBLE = range(7)
encode_put = ev.put_buffer


def test_encodes_numbers_for_double_and_integer_channels():
    assert encode_put(DBR_FLOAT, 1, 2) == (DBR_DOUBLE, 1, struct.pack("<d", 2.0))
    assert encode_put(DBR_SHORT, 1, 3.0) == (DBR_LONG, 1, struct.pack("<i", 3))
    assert encode_put(DBR_DOUBLE, 5, [1.0, 2.5]) == (DBR_DOUBLE, 2, struct.pack("<2d", 1.0, 2.5))


def test_refuses_values_an_integer_channel_cannot_hold():
    for value in (2.5, "7", 2**40):
        with pytest.raises(ValueError):
            encode_put(DBR_LONG, 1, value)


def test_encodes_enum_index_and_label():
    assert encode_put(DBR_ENUM, 1, 2) == (DBR_ENUM, 1, struct.pack("<H", 2))
    assert encode_put(DBR_ENUM, 1, "On", ["Off", "On"]) == (DBR_ENUM, 1, struct.pack("<H", 1))
    # Labels not known yet: the IOC matches the string.
    assert encode_put(DBR_ENUM, 1, "On") == (DBR_STRING, 1, b"On".ljust(40, b"\0"))
    with pytest.raises(ValueError, match="not one of the labels"):
        encode_put(DBR_ENUM, 1, "Maybe", ["Off", "On"])


def test_encodes_strings_and_refuses_overlong_ones():
    assert encode_put(DBR_STRING, 1, "hi") == (DBR_STRING, 1, b"hi".ljust(40, b"\0"))
    with pytest.raises(ValueError, match="longer than 39 bytes"):
        encode_put(DBR_STRING, 1, "x" * 40)
    with pytest.raises(ValueError):
        encode_put(DBR_STRING, 1, 1.5)


def test_refuses_more_elements_than_the_channel_has():
    with pytest.raises(ValueError, match="3 values for a channel of 2 elements"):
        encode_put(DBR_DOUBLE, 2, [1, 2, 3])
    with pytest.raises(ValueError):
        encode_put(DBR_DOUBLE, 2, [])


def test_kinds_js_is_generated_from_this_module():
    # static/squirrel/kinds.js is what live.js compares by: stale, it would disagree with the server.
    path = Path(settings.BASE_DIR) / ev.JS_MODULE_PATH
    assert path.read_text() == ev.js_module(), "run `python manage.py write_kinds_js`"
    for kind, spec in ev.SPECS.items():
        assert f'"{kind}": "{spec.compare}"' in path.read_text()


# Arrays of strings (DBF_STRING waveforms)


def test_string_arrays_are_json_text_in_the_text_column():
    assert ev.to_columns("string_array", ["a", "b"]) == ("string_array", None, '["a","b"]', None)
    assert ev.from_columns("string_array", None, '["a","b"]', None) == ["a", "b"]
    assert ev.from_columns("string_array", None, None, None) is None
    assert ev.to_columns("string_array", "a") == ("string_array", None, '["a"]', None)  # one element as a scalar
    with pytest.raises(ev.UnsupportedValue, match="text only"):
        ev.to_columns("string_array", ["a", 1])
    assert ev.fit_columns("string_array", ("a", "b")) == (None, '["a","b"]', None)
    assert ev.fit_columns("string_array", [1, 2]) == (None, None, None)


def test_string_arrays_compare_element_by_element_exactly():
    assert ev.SPECS["string_array"].compare == ev.EXACT_ARRAY
    assert "string_array" in ev.kinds(column=ev.STR) and "string_array" in ev.kinds(array=True)


def test_a_string_waveform_reads_as_a_string_array():
    assert ev.kind_of_native(ev.DBR_STRING, 4) == "string_array"
    assert ev.kind_of_native(ev.DBR_STRING, 1) == "string"


def test_string_arrays_are_shown_quoted_and_shortened():
    assert ev.display_text("string_array", ["a", "b c"], units="ignored") == '["a", "b c"]'
    assert ev.display_text("string_array", [str(i) for i in range(7)]) == '["0", "1", "2", "3", "4", … (7 values)]'
    assert ev.display_text("string_array", ["x"] * 7, full=True) == "[" + ", ".join(['"x"'] * 7) + "]"


def test_a_string_array_is_put_as_dbr_string_elements():
    assert ev.put_buffer(ev.DBR_STRING, 3, ["ab", "c"]) == (
        ev.DBR_STRING,
        2,
        b"ab".ljust(40, b"\0") + b"c".ljust(40, b"\0"),
    )
    with pytest.raises(ValueError, match="3 values for a channel of 2 elements"):
        ev.put_buffer(ev.DBR_STRING, 2, ["a", "b", "c"])


@pytest.mark.parametrize(
    ("type_id", "code", "kind"),
    [
        ("epics:nt/NTScalar:1.0", "d", "float"),
        ("epics:nt/NTScalar:1.0", "f", "float"),
        ("epics:nt/NTScalar:1.0", "i", "int"),
        ("epics:nt/NTScalar:1.0", "L", "int"),
        ("epics:nt/NTScalar:1.0", "?", "int"),
        ("epics:nt/NTScalar:1.0", "s", "string"),
        ("epics:nt/NTScalarArray:1.0", "ad", "float_array"),
        ("epics:nt/NTScalarArray:1.0", "ab", "int_array"),
        ("epics:nt/NTScalarArray:1.0", "a?", "int_array"),
        ("epics:nt/NTScalarArray:1.0", "as", "string_array"),
        ("epics:nt/NTEnum:1.0", None, "enum"),
        ("epics:nt/NTTable:1.0", None, "structure"),
        ("epics:nt/NTScalar:1.0", "av", "structure"),  # a variant union: no kind holds it
        ("my:own/Thing:1.0", "d", "structure"),
    ],
)
def test_what_a_pvaccess_value_reads_as(type_id, code, kind):
    assert ev.kind_of_pva(type_id, code) == kind


def test_a_structure_is_compact_typed_json_compared_by_the_structure_rule():
    text = ev.structure_text(
        "epics:nt/NTTable:1.0", [["value", ["S", "structure", [["a", "ad"]]]]], {"value": {"a": [1.5]}}
    )
    assert text == (
        '{"id":"epics:nt/NTTable:1.0","type":[["value",["S","structure",[["a","ad"]]]]],"value":{"value":{"a":[1.5]}}}'
    )
    assert ev.SPECS["structure"].compare == ev.STRUCT
    assert ev.to_columns("structure", text) == ("structure", None, text, None)


@pytest.mark.parametrize(
    ("val", "hint", "kind", "value"),
    [
        (1.5, None, "float", 1.5),
        (3, None, "int", 3),
        (3, "enum", "enum", 3),  # the appliance sends an enum's index: the channel's kind tells
        (3, "float", "float", 3.0),
        (3.5, "int", "float", 3.5),  # a hint the value does not fit is ignored
        ("on", None, "string", "on"),
        ("on", "float", "string", "on"),
        ([1, 2], None, "int_array", [1, 2]),
        ([1, 2.5], None, "float_array", [1.0, 2.5]),
        ([1, 2], "float_array", "float_array", [1.0, 2.0]),
        (4.0, "float_array", "float_array", [4.0]),  # a one-element waveform can come as a number
        (["a", "b"], None, "string_array", ["a", "b"]),
        (True, None, "int", 1),
        (1.0, "structure", "float", 1.0),  # never a structure: the appliance archives none
    ],
)
def test_what_an_archived_value_reads_as(val, hint, kind, value):
    assert ev.kind_of_archived(val, hint) == kind
    assert ev.archived_value(val, kind) == value


@pytest.mark.parametrize("val", [None, {"a": 1}, [1, "a"], [[1]]])
def test_an_archived_value_of_no_kind(val):
    assert ev.kind_of_archived(val) is None
