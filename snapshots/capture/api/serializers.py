"""Snapshot API serializers."""

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from pvs.selections import selection_problems
from snapshots.capture.models import GOLDEN_TAG, Snapshot, SnapshotMode, SnapshotTag, SnapshotValue
from snapshots.capture.services import archive_time_refusal, protected_tags_refusal
from squirrel_site import epics_values
from squirrel_site.epics_values import to_json
from squirrel_site.limits import CappedListField, CappedManyRelatedField, ModelSerializer, SentLengthCharField
from squirrel_site.schema import PV_VALUE_SCHEMA

# A snapshot carries a handful of tags; each name given costs a query.
MAX_SNAPSHOT_TAGS = 100


class PVSelectionSerializer(serializers.Serializer):
    """PV filters, as the PV lists take them (pvs.filtersets.PVFilterSet); empty: every registry PV.

    Typed here and checked against the registry now, so that a job never starts with a selection
    its worker would misread (a string where addresses are expected, an unknown filter).
    """

    tag = CappedListField(
        child=serializers.IntegerField(),
        max_length=settings.API_MAX_ITEMS,
        required=False,
        help_text="Tag ids (PVs with all of them).",
    )
    tag_group = serializers.IntegerField(required=False, help_text="Tag group id (PVs with any tag of the group).")
    device = SentLengthCharField(max_length=100, allow_blank=True, required=False, help_text="Device prefix.")
    search = serializers.CharField(
        max_length=100, allow_blank=True, required=False, help_text="Text in addresses, device or description."
    )
    pv = CappedListField(
        child=SentLengthCharField(max_length=100),
        max_length=settings.API_MAX_ITEMS,
        required=False,
        help_text="Setpoint addresses.",
    )
    pv_set = serializers.IntegerField(required=False, help_text="A saved PV set's id (its PVs).")

    def to_internal_value(self, data):
        unknown = set(data) - set(self.fields) if isinstance(data, dict) else set()
        if unknown:
            raise serializers.ValidationError(f"Unknown filters: {', '.join(sorted(map(str, unknown)))}.")
        return dict(super().to_internal_value(data))

    def validate(self, selection):
        problems = selection_problems(selection)
        if problems:
            raise serializers.ValidationError(problems)
        return selection


class SnapshotTagNameField(serializers.SlugRelatedField):
    """A snapshot tag by its name, which must be given as a string: DRF's own field looks up any
    JSON value and answers an object with "Object with name={} does not exist"."""

    default_error_messages = {"not_a_name": "Give a tag's name as a string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_name")
        return super().to_internal_value(data)


def snapshot_tags_field(**kwargs) -> CappedManyRelatedField:
    """Snapshot tags by name, at most MAX_SNAPSHOT_TAGS."""
    return CappedManyRelatedField(
        child_relation=SnapshotTagNameField(slug_field="name", queryset=SnapshotTag.objects.all()),
        max_length=MAX_SNAPSHOT_TAGS,
        **kwargs,
    )


class SnapshotSerializer(ModelSerializer):
    created_by = serializers.StringRelatedField()
    tags = serializers.SlugRelatedField(slug_field="name", many=True, read_only=True)
    golden = serializers.SerializerMethodField()

    class Meta:
        model = Snapshot
        fields = [
            "id",
            "title",
            "comment",
            "created_by",
            "created_at",
            "mode",
            "archived_at",
            "origin",
            "tags",
            "golden",
            "pv_count",
            "disconnected_count",
        ]
        read_only_fields = fields

    def get_golden(self, snapshot) -> bool:
        return any(tag.name == GOLDEN_TAG for tag in snapshot.tags.all())


class TakeSnapshotSerializer(serializers.Serializer):
    """Parameters of a snapshot job; `selection` holds PV filters (tag, tag_group, device, search, pv,
    pv_set)."""

    title = SentLengthCharField(max_length=200)
    comment = serializers.CharField(required=False, allow_blank=True, default="")
    mode = serializers.ChoiceField(choices=SnapshotMode.choices, default=SnapshotMode.HYBRID)
    at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Mode archive only (and required there): the time the values are of, ISO 8601; without an "
        "offset, in the server's time zone. Each PV's last archived sample at or before it.",
    )
    tags = snapshot_tags_field(required=False)
    selection = PVSelectionSerializer(required=False, default=dict)

    def validate(self, data):
        at, archive = data.get("at"), data.get("mode") == SnapshotMode.ARCHIVE
        if archive and at is None:
            raise serializers.ValidationError({"at": "A snapshot from the archive needs the time it is of."})
        if at is not None and not archive:
            raise serializers.ValidationError({"at": "A time is for a snapshot from the archive only (mode archive)."})
        refusal = archive_time_refusal(at) if archive else None
        if refusal:
            raise serializers.ValidationError({"at": refusal})
        return data

    def validate_tags(self, tags):
        refusal = protected_tags_refusal(self.context["request"].user, (), tags)
        if refusal:
            raise serializers.ValidationError(refusal)
        return tags

    def job_data(self) -> dict:
        data = self.validated_data
        return {
            "title": data["title"],
            "comment": data["comment"],
            "mode": data["mode"],
            "tags": [tag.name for tag in data.get("tags", [])],
            "selection": data["selection"],
        } | ({"at": data["at"].isoformat()} if data.get("at") is not None else {})


class SnapshotTagsSerializer(serializers.Serializer):
    """A snapshot's new tags, by name (snapshots.capture.actions.edit_snapshot guards protected ones)."""

    tags = snapshot_tags_field()


class SnapshotValueSerializer(ModelSerializer):
    """One saved value, typed: `setpoint`/`readback` are numbers, strings, lists or null."""

    setpoint = serializers.SerializerMethodField()
    readback = serializers.SerializerMethodField()
    enum_label = serializers.SerializerMethodField()

    class Meta:
        model = SnapshotValue
        fields = [
            "id",
            "pv",
            "pv_name",
            "readback_name",
            "value_type",
            "setpoint",
            "enum_label",
            "readback",
            "status",
            "severity",
            "timestamp",
            "readback_status",
            "readback_severity",
            "readback_timestamp",
            "units",
            "precision",
            "enum_labels",
            "source",
            "age",
            "archiver",
            "connected",
            "reason",
        ]

    @extend_schema_field(PV_VALUE_SCHEMA)
    def get_setpoint(self, value):
        return to_json(value.setpoint_value)

    @extend_schema_field(PV_VALUE_SCHEMA)
    def get_readback(self, value):
        return to_json(value.readback_value)

    def get_enum_label(self, value) -> str | None:
        return epics_values.saved_label(value.value_type, value.setpoint_str)
