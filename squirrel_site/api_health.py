"""GET /api/v1/health/: the health report (squirrel_site.health) for load balancers and people."""

from django.utils.cache import add_never_cache_headers
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from monitor.health import DEGRADED, MISSING, OK, STALE
from squirrel_site.errors import RETRY_AFTER
from squirrel_site.health import UNAVAILABLE, UNKNOWN, health_report, http_status


class HealthQuerySerializer(serializers.Serializer):
    strict = serializers.BooleanField(default=False, help_text="Answer 503 when degraded, too.")


class CheckSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    latency_ms = serializers.FloatField(help_text="Round trip of the check, milliseconds.")
    error = serializers.CharField(required=False, help_text="The error's class, when not ok.")


class IocSerializer(serializers.Serializer):
    host = serializers.CharField(help_text='The IOC, "host:port".')
    connected = serializers.IntegerField()
    disconnected = serializers.IntegerField()


class NeverConnectedSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Addresses that no IOC has ever answered.")
    addresses = serializers.ListField(
        child=serializers.CharField(), help_text="The first of them by name (at most 20)."
    )


class ProtocolCountsSerializer(serializers.Serializer):
    addresses = serializers.IntegerField(help_text="Addresses of this protocol monitored.")
    connected = serializers.IntegerField(help_text="Of those, connected now.")
    never_connected = serializers.IntegerField(help_text="Of those, never answered by any server.")


class ProtocolsSerializer(serializers.Serializer):
    ca = ProtocolCountsSerializer(help_text="Channel Access addresses.")
    pva = ProtocolCountsSerializer(help_text="pvAccess (pva://) addresses.")


class ShardSerializer(serializers.Serializer):
    shard = serializers.CharField(help_text='The shard, e.g. "0of1" (index of count).')
    status = serializers.ChoiceField(
        [OK, DEGRADED, STALE, MISSING],
        help_text="ok: recent heartbeat and every address has a value; degraded: ok, but fewer than "
        "SQUIRREL_HEALTH_MIN_CONNECTED of its addresses, or of one IOC's, are connected; stale: heartbeat "
        "older than 5 s, or a new leader still filling the cache; missing: no heartbeat, while the split's "
        "other shards have one.",
    )
    leader = serializers.CharField(allow_null=True, help_text='The leading monitor, "host:pid".')
    heartbeat_age_s = serializers.FloatField(allow_null=True)
    synced = serializers.BooleanField(allow_null=True)
    addresses = serializers.IntegerField(
        allow_null=True, help_text="Addresses monitored (setpoints, readbacks, configs)."
    )
    connected = serializers.IntegerField(allow_null=True, help_text="Of those, connected now.")
    updates_per_s = serializers.FloatField(allow_null=True, help_text="Channel Access updates received per second.")
    lag_p95_s = serializers.FloatField(allow_null=True, help_text="95th percentile of IOC timestamp to Redis write.")
    degraded_iocs = IocSerializer(
        many=True, help_text="The IOCs with fewer than SQUIRREL_HEALTH_MIN_CONNECTED of their addresses connected."
    )
    never_connected = NeverConnectedSerializer(
        help_text="Addresses no IOC has ever answered (no server: a typo, a retired IOC): reported, and counted in "
        "the shard's fraction, but no IOC of their own, so a few of them do not degrade the shard."
    )
    protocols = ProtocolsSerializer(
        help_text="The shard's addresses, connected and never connected, per protocol: Channel Access and pvAccess."
    )


class MonitorSerializer(serializers.Serializer):
    status = serializers.ChoiceField([OK, DEGRADED, STALE, MISSING, UNKNOWN], help_text="The worst shard's status.")
    shards = ShardSerializer(many=True)


class WorkerSerializer(serializers.Serializer):
    name = serializers.CharField(help_text='The Celery node name, e.g. "celery@host".')
    pid = serializers.IntegerField()
    concurrency = serializers.IntegerField()
    active = serializers.IntegerField(help_text="Tasks running now.")
    last_seen = serializers.DateTimeField(help_text="Its latest heartbeat (every 2 s; gone after 10 s).")
    age_s = serializers.FloatField()


class WorkersSerializer(serializers.Serializer):
    status = serializers.ChoiceField([OK, MISSING, UNKNOWN])
    count = serializers.IntegerField(allow_null=True, help_text="Workers alive; null while Redis is down.")
    workers = WorkerSerializer(many=True)


class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        [OK, DEGRADED, UNAVAILABLE],
        help_text="unavailable: the database or Redis cannot be reached; degraded: the monitor is not ok "
        "(stale, missing, or too few addresses connected) or no worker is alive.",
    )
    checked_at = serializers.DateTimeField()
    database = CheckSerializer()
    redis = CheckSerializer()
    monitor = MonitorSerializer()
    workers = WorkersSerializer()


class HealthView(APIView):
    """Whether this web instance can serve (200) or not (503), with the monitor and the workers.

    No authentication: load balancers call it. `?strict=1` also answers 503 when the report is
    degraded (monitor not ok, no worker): readiness of the whole system, not of this instance.
    """

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []
    renderer_classes = [JSONRenderer]

    def perform_content_negotiation(self, request, force=False):
        # Probes send whatever Accept header they were set up with: the answer is JSON regardless.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        parameters=[HealthQuerySerializer],
        responses={200: HealthSerializer, 503: HealthSerializer},
    )
    def get(self, request):
        report = health_report()
        # A probe misconfigured with ?strict=maybe learns so (400) instead of silently probing leniently.
        query = HealthQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        strict = query.validated_data["strict"]
        response = Response(HealthSerializer(report).data, status=http_status(report, strict=strict))
        if response.status_code == 503:
            response["Retry-After"] = str(RETRY_AFTER)
        add_never_cache_headers(response)
        return response
