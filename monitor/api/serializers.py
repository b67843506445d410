"""Live-value payloads of the API: registry PVs with their values from Redis."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime

import redis
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import APIException

from monitor import live
from pvs.models import PV
from squirrel_site import epics_values
from squirrel_site.epics_values import Value, label_of, to_json
from squirrel_site.schema import PV_VALUE_SCHEMA


class LiveValuesUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "Live values are unavailable: Redis cannot be reached."
    default_code = "live_values_unavailable"


def live_representation(value: Value | None, meta: live.LiveMeta | None, now: float) -> dict | None:
    """One address's live object, or None when Redis has no value for it."""
    if value is None:
        return None
    return {
        "value": to_json(value.value),
        "kind": value.kind,
        "enum_label": label_of(value, meta),
        "status": value.status,
        "severity": value.severity,
        "timestamp": datetime.fromtimestamp(value.timestamp, UTC).isoformat() if value.timestamp else None,
        "age": round(max(0.0, now - value.received), 3),
        "connected": value.connected,
        "units": meta.units if meta else "",
        "precision": meta.precision if meta else None,
    }


@extend_schema_field(PV_VALUE_SCHEMA)
class _PVValueField(serializers.JSONField):
    pass


class LiveValueSerializer(serializers.Serializer):
    """The shape of live_representation(), for the schema (it is built as a dict, per page)."""

    value = _PVValueField()
    kind = serializers.CharField(help_text=f"{', '.join(k for k, _ in epics_values.choices())}.")
    enum_label = serializers.CharField(allow_null=True)
    status = serializers.IntegerField(help_text="EPICS alarm status.")
    severity = serializers.IntegerField()
    timestamp = serializers.DateTimeField(allow_null=True, help_text="IOC time; null if never processed.")
    age = serializers.FloatField(help_text="Seconds since the monitor received it.")
    connected = serializers.BooleanField()
    units = serializers.CharField(allow_blank=True)
    precision = serializers.IntegerField(allow_null=True)


class LivePage:
    """The live values and metadata of a page of PVs, read from Redis in one round trip."""

    def __init__(self, pvs: Sequence[PV]):
        addresses = [a for pv in pvs for a in (pv.setpoint_address, pv.readback_address) if a]
        try:
            self.values, self.metas, _ = live.read_values_and_metadata(addresses)
        except redis.RedisError as exc:
            raise LiveValuesUnavailable() from exc
        self.now = time.time()

    def representation(self, address: str) -> dict | None:
        if not address:
            return None
        return live_representation(self.values.get(address), self.metas.get(address), self.now)


class LivePVListSerializer(serializers.ListSerializer):
    """Reads the whole page's live values at once, never one PV at a time."""

    def to_representation(self, data):
        pvs = list(data)
        self.child.live_page = LivePage(pvs)
        return super().to_representation(pvs)


class LivePVSerializer(serializers.ModelSerializer):
    """A registry PV with its setpoint's and readback's live values (null where Redis has none)."""

    setpoint = serializers.SerializerMethodField()
    readback = serializers.SerializerMethodField()

    live_page: LivePage | None = None

    class Meta:
        model = PV
        fields = ["id", "setpoint_address", "readback_address", "setpoint", "readback"]
        read_only_fields = fields
        list_serializer_class = LivePVListSerializer

    def to_representation(self, instance):
        if self.live_page is None:
            self.live_page = LivePage([instance])
        return super().to_representation(instance)

    @extend_schema_field(LiveValueSerializer(allow_null=True))
    def get_setpoint(self, pv: PV) -> dict | None:
        return self.live_page.representation(pv.setpoint_address)

    @extend_schema_field(LiveValueSerializer(allow_null=True))
    def get_readback(self, pv: PV) -> dict | None:
        return self.live_page.representation(pv.readback_address)
