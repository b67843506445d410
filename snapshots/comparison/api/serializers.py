"""The shapes of the compare and drift answers, for the schema.

The views build these answers as plain dicts (snapshots.comparison.api.payloads): a page of a
thousand rows through DRF serializers would cost more than the comparison itself. The contract
test (squirrel_site/tests/test_openapi_contract.py) checks that the two agree.
"""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from snapshots.capture.api.serializers import SnapshotSerializer
from snapshots.capture.models import ValueType
from snapshots.comparison.forms import LIVE
from snapshots.comparison.rules import ComparisonStatus
from squirrel_site.schema import PV_VALUE_SCHEMA


@extend_schema_field(PV_VALUE_SCHEMA)
class PVValueField(serializers.JSONField):
    """An EPICS value (number, string, array or null; non-finite floats spelled out)."""


class ReadbackSerializer(serializers.Serializer):
    """A side's readback: its value as saved, or as read live (units and precision the setpoint's)."""

    kind = serializers.ChoiceField(choices=ValueType.choices)
    value = PVValueField()
    display = serializers.CharField()
    label = serializers.CharField(allow_null=True, help_text="An enum's label.")
    connected = serializers.BooleanField()
    severity = serializers.IntegerField(allow_null=True)
    status = serializers.IntegerField(allow_null=True, help_text="EPICS alarm status.")
    units = serializers.CharField(allow_blank=True)
    precision = serializers.IntegerField(allow_null=True)
    reason = serializers.CharField(allow_blank=True, help_text="Why there is no value.")
    timestamp = serializers.FloatField(allow_null=True, help_text="IOC time, Unix seconds.")
    address = serializers.CharField(required=False, help_text="The readback's address.")
    readback = serializers.JSONField(allow_null=True, help_text="Always null (a readback has no readback).")


class CompareSideSerializer(ReadbackSerializer):
    """One side of a compared PV: the saved or the live value, with its alarm and display."""

    # A readback's fields, in the same order (DRF keeps a base's order); these three say more.
    display = serializers.CharField(help_text="The value as the pages show it (arrays shortened).")
    address = serializers.CharField(required=False, help_text="The live address read (live side only).")
    readback = ReadbackSerializer(allow_null=True, help_text="The readback, null when the PV has none.")


class CompareRowSerializer(serializers.Serializer):
    """One PV of a comparison."""

    pv = serializers.IntegerField(allow_null=True, help_text="The registry PV, if it is still there.")
    pv_name = serializers.CharField()
    device = serializers.CharField(allow_blank=True)
    status = serializers.ChoiceField(choices=ComparisonStatus.choices)
    kind = serializers.ChoiceField(choices=ValueType.choices)
    a = CompareSideSerializer(allow_null=True)
    b = CompareSideSerializer(allow_null=True)
    delta = PVValueField(help_text="b - a: a number, per element for arrays, null when not numeric.")
    differences = serializers.ListField(
        child=serializers.CharField(),
        help_text="How two structures out of tolerance differ, a line each (columns, rows, "
        '"column `setpoint`: rows 2, 5 differ"); empty for other kinds and statuses.',
    )
    abs_tolerance = serializers.FloatField()
    rel_tolerance = serializers.FloatField()
    severity = serializers.IntegerField(allow_null=True, help_text="The higher alarm severity of the two sides.")


@extend_schema_field({"oneOf": [{"$ref": "#/components/schemas/Snapshot"}, {"type": "string", "enum": [LIVE]}]})
class SnapshotOrLiveField(serializers.JSONField):
    """Snapshot `b`, or "live"."""


class ComparePageSerializer(serializers.Serializer):
    """A page of compared PVs, with the counts per status and links to the next and previous pages."""

    a = SnapshotSerializer()
    b = SnapshotOrLiveField()
    count = serializers.IntegerField(help_text="Rows that pass the filters.")
    counts = serializers.DictField(
        child=serializers.IntegerField(),
        allow_null=True,
        help_text="Rows per status before the status filter; null with counts=false.",
    )
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = CompareRowSerializer(many=True)


class NWayCellSerializer(serializers.Serializer):
    """One column of an N-way row: its value against the reference's."""

    status = serializers.ChoiceField(
        choices=ComparisonStatus.choices, allow_null=True, help_text="null: the PV is in neither A nor this column."
    )
    value = CompareSideSerializer(allow_null=True)
    delta = PVValueField(help_text="value - reference: a number, per element for arrays, null when not numeric.")
    delta_display = serializers.CharField(allow_blank=True, help_text="The delta as the page shows it, with units.")
    differences = serializers.ListField(
        child=serializers.CharField(), help_text="How two structures out of tolerance differ, a line each."
    )


class NWayRowSerializer(serializers.Serializer):
    """One PV of an N-way comparison."""

    pv = serializers.IntegerField(allow_null=True, help_text="The registry PV, if it is still there.")
    pv_name = serializers.CharField()
    device = serializers.CharField(allow_blank=True)
    abs_tolerance = serializers.FloatField()
    rel_tolerance = serializers.FloatField()
    reference = CompareSideSerializer(allow_null=True, help_text="A's value; null when A lacks the PV.")
    columns = NWayCellSerializer(many=True)


class NWayPageSerializer(serializers.Serializer):
    """A page of an N-way comparison: A against each column, counts per column."""

    a = SnapshotSerializer()
    columns = serializers.ListField(child=SnapshotOrLiveField(), help_text='The columns: snapshots, or "live".')
    count = serializers.IntegerField(help_text="Rows that pass the filters.")
    counts = serializers.ListField(
        child=serializers.DictField(child=serializers.IntegerField()),
        help_text="Per column, rows per status before the status filters.",
    )
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = NWayRowSerializer(many=True)


class DriftCountsSerializer(serializers.Serializer):
    """PVs against the live values, counted."""

    pvs = serializers.IntegerField()
    out_of_tolerance = serializers.IntegerField()
    disconnected = serializers.IntegerField()
    type_changed = serializers.IntegerField()
    counts = serializers.DictField(child=serializers.IntegerField(), help_text="PVs per comparison status.")
    compare = serializers.URLField(help_text="The compare rows that differ.")


class DriftTagSerializer(DriftCountsSerializer):
    """The PVs carrying one tag."""

    id = serializers.IntegerField()
    name = serializers.CharField()


class DriftGroupSerializer(DriftTagSerializer):
    """The PVs carrying any tag of one tag group, and each of its tags."""

    tags = DriftTagSerializer(many=True)


class DriftSerializer(serializers.Serializer):
    """Drift of the live values from a snapshot: totals, per tag group and per tag."""

    snapshot = SnapshotSerializer()
    read_at = serializers.FloatField(help_text="When the live values were read, Unix seconds.")
    totals = DriftCountsSerializer()
    groups = DriftGroupSerializer(many=True)
