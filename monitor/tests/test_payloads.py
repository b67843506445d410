"""The /ws/live/ messages: value payloads, shared entries, client messages."""

import json

import pytest

from monitor.payloads import (
    Ack,
    Subscribe,
    WatchHealth,
    error_message,
    health_message,
    parse_client_message,
    value_entry,
    value_payload,
    values_message,
)
from squirrel_site.testing.values import make_meta, make_value


def test_a_value_carries_value_display_alarm_connection_and_ioc_time():
    entry = value_entry("SIM:A", make_value(value=1.5, severity=1, status=3), make_meta(units="mA", precision=2))
    message = json.loads(values_message(7, False, [entry]))
    assert message == {
        "type": "values",
        "seq": 7,
        "full": False,
        "values": {
            "SIM:A": {
                "value": 1.5,
                "display": "1.50 mA",
                "severity": 1,
                "status": 3,
                "connected": True,
                "timestamp": 1_700_000_000.25,
            }
        },
    }


@pytest.mark.parametrize(
    "value, meta",
    [
        (make_value(value=-0.0), None),
        (make_value(value=1e300), make_meta()),
        (make_value(value=float("-inf")), None),
        (make_value(kind="int", value=-7, severity=2, status=7), make_meta(units="counts", precision=None)),
        (make_value(kind="enum", value=1), make_meta(enum_labels=["Off", 'On "quoted" ✓'])),
        (make_value(kind="string", value='back\\slash "and" ünïcode'), None),
        (make_value(kind="float_array", value=[1.5, float("nan")]), make_meta()),
        (make_value(kind="", value=None, timestamp=0.0, connected=False), None),
        (None, None),
    ],
)
def test_the_hand_built_entry_is_the_json_of_the_payload(value, meta):
    assert json.loads("{" + value_entry("SIM:A", value, meta) + "}") == {"SIM:A": value_payload(value, meta)}


def test_an_address_without_a_value_reads_as_disconnected():
    (payload,) = json.loads(values_message(1, True, [value_entry("SIM:NONE", None, None)]))["values"].values()
    assert payload == {
        "value": None,
        "display": "",
        "severity": None,
        "status": None,
        "connected": False,
        "timestamp": None,
    }


def test_enum_value_is_the_index_and_display_the_label():
    entry = value_entry("SIM:E", make_value(kind="enum", value=1), make_meta(enum_labels=["Off", "On"]))
    payload = json.loads(values_message(1, True, [entry]))["values"]["SIM:E"]
    assert (payload["value"], payload["display"]) == (1, "On")


def test_non_finite_numbers_are_valid_json():
    entry = value_entry("SIM:W", make_value(kind="float_array", value=[float("nan"), float("inf")]), None)
    message = json.loads(values_message(1, True, [entry]), parse_constant=lambda c: pytest.fail(f"bare {c}"))
    assert message["values"]["SIM:W"]["value"] == ["NaN", "Infinity"]


def test_a_never_processed_record_has_no_timestamp():
    payload = json.loads(values_message(1, True, [value_entry("SIM:A", make_value(timestamp=0.0), None)]))
    assert payload["values"]["SIM:A"]["timestamp"] is None


def test_client_messages():
    assert parse_client_message('{"subscribe": ["A", "B", "A"]}') == Subscribe(frozenset({"A", "B"}))
    assert parse_client_message('{"ack": 3}') == Ack(3)
    assert parse_client_message('{"health": true}') == WatchHealth()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "[]",
        '{"ack": -1}',
        '{"ack": true}',
        '{"ack": "3"}',
        '{"subscribe": "A"}',
        '{"subscribe": [""]}',
        '{"subscribe": [1]}',
        '{"subscribe": ["' + "A" * 200 + '"]}',
        '{"hello": 1}',
        '{"ack": 1, "subscribe": []}',
        '{"health": false}',
        '{"health": 1}',
        '{"health": true, "ack": 1}',
    ],
)
def test_unknown_client_messages_are_refused_with_a_reason(text):
    with pytest.raises(ValueError, match=r"\w"):
        parse_client_message(text)


def test_a_message_nested_too_deeply_is_refused_saying_so():
    with pytest.raises(ValueError, match="^Messages must be JSON objects: nested too deeply.$"):
        parse_client_message("[" * 100_000 + "]" * 100_000)


def test_error_message():
    assert json.loads(error_message("No.")) == {"type": "error", "message": "No."}


def test_health_message():
    assert json.loads(health_message("stale", 6.12345, 5.0)) == {
        "type": "health",
        "monitor": "stale",
        "heartbeat_age_s": 6.123,
        "stale_after_s": 5.0,
    }
    assert json.loads(health_message("missing", None, 5.0))["heartbeat_age_s"] is None
