"""Snapshot API serializers."""

from rest_framework import serializers

from snapshots.jobs import selection_problems
from squirrel_site.json_values import json_safe
from snapshots.models import GOLDEN_TAG, Snapshot, SnapshotMode, SnapshotTag, SnapshotValue
from snapshots.services import protected_tags_refusal


class PVSelectionField(serializers.DictField):
    """PV filters (PVFilterSet parameters: tag, tag_group, device, search, pv), checked now."""

    def to_internal_value(self, data):
        selection = super().to_internal_value(data)
        problems = selection_problems(selection)
        if problems:
            raise serializers.ValidationError(problems)
        return selection


class SnapshotSerializer(serializers.ModelSerializer):
    created_by = serializers.StringRelatedField()
    tags = serializers.SlugRelatedField(slug_field="name", many=True, read_only=True)
    golden = serializers.SerializerMethodField()

    class Meta:
        model = Snapshot
        fields = [
            "id", "title", "comment", "created_by", "created_at", "mode", "origin", "tags", "golden",
            "pv_count", "disconnected_count",
        ]
        read_only_fields = fields

    def get_golden(self, snapshot) -> bool:
        return any(tag.name == GOLDEN_TAG for tag in snapshot.tags.all())


class TakeSnapshotSerializer(serializers.Serializer):
    """Parameters of a snapshot job; `selection` holds PV filters (tag, tag_group, device, search, pv)."""

    title = serializers.CharField(max_length=200)
    comment = serializers.CharField(required=False, allow_blank=True, default="")
    mode = serializers.ChoiceField(choices=SnapshotMode.choices, default=SnapshotMode.HYBRID)
    tags = serializers.SlugRelatedField(slug_field="name", queryset=SnapshotTag.objects.all(), many=True, required=False)
    selection = PVSelectionField(required=False, default=dict)

    def validate_tags(self, tags):
        refusal = protected_tags_refusal(self.context["request"].user, (), tags)
        if refusal:
            raise serializers.ValidationError(refusal)
        return tags

    def job_data(self) -> dict:
        data = self.validated_data
        return {
            "title": data["title"], "comment": data["comment"], "mode": data["mode"],
            "tags": [tag.name for tag in data.get("tags", [])], "selection": data["selection"],
        }  # fmt: skip


class SnapshotTagsSerializer(serializers.Serializer):
    """A snapshot's new tags, by name (snapshots.actions.edit_snapshot guards protected ones)."""

    tags = serializers.SlugRelatedField(slug_field="name", queryset=SnapshotTag.objects.all(), many=True)


class SnapshotValueSerializer(serializers.ModelSerializer):
    """One saved value, typed: `setpoint`/`readback` are numbers, strings, lists or null."""

    setpoint = serializers.SerializerMethodField()
    readback = serializers.SerializerMethodField()
    enum_label = serializers.SerializerMethodField()

    class Meta:
        model = SnapshotValue
        fields = [
            "id", "pv", "pv_name", "readback_name", "value_type", "setpoint", "enum_label", "readback",
            "status", "severity", "timestamp", "readback_status", "readback_severity", "readback_timestamp",
            "units", "precision", "enum_labels", "source", "age", "connected", "reason",
        ]

    def get_setpoint(self, value):
        return json_safe(value.setpoint_value)

    def get_readback(self, value):
        return json_safe(value.readback_value)

    def get_enum_label(self, value) -> str | None:
        return value.setpoint_str if value.value_type == "enum" else None

