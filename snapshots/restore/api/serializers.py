"""Restore API serializers: previews, executions and their per-PV items."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from pvs.selections import select_pvs
from snapshots.capture.api.serializers import PVSelectionSerializer
from snapshots.capture.models import Snapshot
from snapshots.restore.models import Restore, RestoreItem, RestorePreview, RestorePreviewItem
from squirrel_site.epics_values import to_json
from squirrel_site.schema import PV_VALUE_SCHEMA


class RestorePreviewSerializer(serializers.ModelSerializer):
    created_by = serializers.StringRelatedField()
    restore = serializers.SerializerMethodField()

    class Meta:
        model = RestorePreview
        fields = [
            "id",
            "snapshot",
            "created_by",
            "created_at",
            "expires_at",
            "include_unchanged",
            "selection_size",
            "live_source",
            "write_count",
            "unchanged_count",
            "read_only_count",
            "disconnected_count",
            "no_write_access_count",
            "no_saved_value_count",
            "not_in_registry_count",
            "not_writable_count",
            "restore",
        ]
        read_only_fields = fields

    def get_restore(self, preview) -> int | None:
        restore = getattr(preview, "restore", None)
        return restore.id if restore else None


class CreatePreviewSerializer(serializers.Serializer):
    """What to restore: a snapshot, optionally a PV selection (PVFilterSet parameters)."""

    snapshot = serializers.PrimaryKeyRelatedField(queryset=Snapshot.objects.all())
    selection = PVSelectionSerializer(required=False, default=dict)
    include_unchanged = serializers.BooleanField(default=False)

    def validate_selection(self, selection: dict) -> dict:
        # As the page's restore form: a selection that picks no PV is refused before a preview (and
        # then an empty "succeeded" restore) is made of it.
        if selection and not select_pvs(selection).exists():
            raise serializers.ValidationError("No PV matches this selection.")
        return selection


class ExecuteSerializer(serializers.Serializer):
    """Options of a restore execution."""

    verify = serializers.BooleanField(default=True)
    # Well below the broker's visibility timeout (600 s), after which a running task is redelivered.
    verify_timeout = serializers.FloatField(default=5.0, min_value=0.0, max_value=300.0)


class _TypedItemSerializer(serializers.ModelSerializer):
    target = serializers.SerializerMethodField()

    @extend_schema_field(PV_VALUE_SCHEMA)
    def get_target(self, item):
        return to_json(item.target_value)


class RestorePreviewItemSerializer(_TypedItemSerializer):
    live = serializers.SerializerMethodField()

    class Meta:
        model = RestorePreviewItem
        fields = [
            "id",
            "pv",
            "pv_name",
            "readback_name",
            "stage",
            "value_type",
            "target",
            "live",
            "within_tolerance",
            "action",
        ]

    @extend_schema_field(PV_VALUE_SCHEMA)
    def get_live(self, item):
        return to_json(item.live_value)


class RestoreSerializer(serializers.ModelSerializer):
    created_by = serializers.StringRelatedField()

    class Meta:
        model = Restore
        fields = [
            "id",
            "preview",
            "snapshot",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
            "undo_snapshot",
            "job",
            "status",
            "options",
            "runs",
            "writing_stage",
            "summary",
        ]
        read_only_fields = fields


class RestoreItemSerializer(_TypedItemSerializer):
    old = serializers.SerializerMethodField()
    readback = serializers.SerializerMethodField()

    class Meta:
        model = RestoreItem
        exclude = [
            "restore",
            "target_num",
            "target_str",
            "target_array",
            "old_num",
            "old_str",
            "old_array",
            "readback_num",
            "readback_str",
            "readback_array",
        ]

    @extend_schema_field(PV_VALUE_SCHEMA)
    def get_old(self, item):
        return to_json(item.old_value)

    @extend_schema_field(PV_VALUE_SCHEMA)
    def get_readback(self, item):
        return to_json(item.readback_value)
