"""Every message of the live-values WebSocket (/ws/live/), both directions, in one place.

Client -> server: ``{"subscribe": [ADDRESS, ...]}`` (replaces the set), ``{"ack": SEQ}`` or
``{"health": true}`` (send me the monitor's health from now on).
Server -> client: ``{"type": "values", "seq": N, "full": BOOL, "values": {ADDRESS: LiveValuePayload}}``,
``{"type": "health", ...}`` (HealthPayload) or ``{"type": "error", "message": TEXT}``.
See docs/live_updates.md.

A web process encodes each changed address's entry once (:func:`value_entry`) and joins the same
text into every client's message that carries it (:func:`values_message`): fifty clients watching
one page cost one JSON encoding per value, not fifty.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypedDict

from monitor.display import display_text
from monitor.live import LiveMeta, LiveValue
from pvs.validators import ADDRESS_MAX_LENGTH
from squirrel_site.json_values import json_safe
from squirrel_site.untrusted import parse_json


class LiveValuePayload(TypedDict):
    """One address's live value as a page needs it (enums: value is the index, display the label)."""

    value: float | int | str | list | None  # non-finite floats spelled "NaN", "Infinity", "-Infinity"
    display: str
    severity: int | None
    status: int | None
    connected: bool
    timestamp: float | None  # IOC time, Unix seconds; None if never processed or no value


class HealthPayload(TypedDict):
    """Whether the values a page shows are current: the monitor's health (monitor.health) as this
    web process sees it, every streams.HEALTH_INTERVAL to the clients that asked for it."""

    type: str  # "health"
    # ok, degraded, stale, missing (monitor.health); syncing (stale only for want of some first
    # values: the monitor is alive); unknown (Redis unreachable)
    monitor: str
    heartbeat_age_s: float | None  # the oldest shard heartbeat's age; None when there is none
    stale_after_s: float  # settings.LIVE_STALE_SECONDS: show a value as old past this age


class ErrorPayload(TypedDict):
    type: str  # "error"
    message: str


@dataclass(frozen=True)
class Subscribe:
    """The client's new set of addresses (it replaces the previous one)."""

    addresses: frozenset[str]


@dataclass(frozen=True)
class Ack:
    """The client has applied every message up to and including `seq`."""

    seq: int


@dataclass(frozen=True)
class WatchHealth:
    """The client wants health messages (HealthPayload) from now on."""


def value_payload(value: LiveValue | None, meta: LiveMeta | None) -> LiveValuePayload:
    """What clients get for one address; `value` None (nothing in Redis) reads as disconnected."""
    if value is None:
        return LiveValuePayload(value=None, display="", severity=None, status=None, connected=False, timestamp=None)
    return LiveValuePayload(
        value=json_safe(value.value),
        display=display_text(value, meta),
        severity=value.severity,
        status=value.status,
        connected=value.connected,
        timestamp=value.timestamp or None,
    )


def value_entry(address: str, value: LiveValue | None, meta: LiveMeta | None) -> str:
    """One ``"ADDRESS": {...}`` member of a values message, encoded once and shared by messages.

    The same JSON as ``_compact({address: value_payload(value, meta)})`` without the braces, put
    together by hand: a web process encodes every watched change (tens of thousands a second).
    """
    if value is None:
        return f"{_compact(address)}:{_NO_VALUE}"
    v = value.value
    encoded = repr(v) if type(v) is float and math.isfinite(v) else _compact(json_safe(v))
    return (
        f'{_compact(address)}:{{"value":{encoded},"display":{_compact(display_text(value, meta))},'
        f'"severity":{int(value.severity)},"status":{int(value.status)},'
        f'"connected":{"true" if value.connected else "false"},'
        f'"timestamp":{repr(float(value.timestamp)) if value.timestamp else "null"}}}'
    )


def values_message(seq: int, full: bool, entries: Iterable[str]) -> str:
    """A values message made of :func:`value_entry` texts."""
    return f'{{"type":"values","seq":{int(seq)},"full":{"true" if full else "false"},"values":{{{",".join(entries)}}}}}'


def health_message(monitor: str, heartbeat_age_s: float | None, stale_after_s: float) -> str:
    """A health message (HealthPayload)."""
    age = None if heartbeat_age_s is None else round(heartbeat_age_s, 3)
    return _compact(HealthPayload(type="health", monitor=monitor, heartbeat_age_s=age, stale_after_s=stale_after_s))


def error_message(message: str) -> str:
    return _compact(ErrorPayload(type="error", message=message))


def parse_client_message(text: str | None) -> Subscribe | Ack | WatchHealth:
    """A client's message; ValueError with a message for the client if it is not one we know."""
    try:
        message = parse_json(text or "")
    except json.JSONDecodeError:
        raise ValueError("Messages must be JSON objects.") from None
    except ValueError as exc:
        raise ValueError(f"Messages must be JSON objects: {exc}.") from None
    if not isinstance(message, dict) or len(message) != 1:
        raise ValueError(_KNOWN)
    if "subscribe" in message:
        addresses = message["subscribe"]
        if not isinstance(addresses, list) or not all(
            isinstance(a, str) and 0 < len(a) <= ADDRESS_MAX_LENGTH for a in addresses
        ):
            raise ValueError(f'"subscribe" takes a list of addresses (1 to {ADDRESS_MAX_LENGTH} characters).')
        return Subscribe(frozenset(addresses))
    if "ack" in message:
        seq = message["ack"]
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
            raise ValueError('"ack" takes the seq of the last message applied.')
        return Ack(seq)
    if "health" in message:
        if message["health"] is not True:
            raise ValueError('"health" takes true.')
        return WatchHealth()
    raise ValueError(_KNOWN)


_KNOWN = 'Send {"subscribe": [address, ...]}, {"ack": seq} or {"health": true}.'


# allow_nan=False: json_safe spells non-finite floats; a bare NaN would break JSON.parse. One
# encoder for every call: json.dumps with options builds a new one each time.
_compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
_NO_VALUE = _compact(value_payload(None, None))
