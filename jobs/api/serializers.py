"""Job serializers."""

from rest_framework import serializers

from jobs.models import Job


class JobSerializer(serializers.ModelSerializer):
    """A job's state; `result_id` is what it produced (a snapshot or a restore) when it succeeded.
    A job not started by `start_by` (restores) ends `expired`, having done nothing."""

    created_by = serializers.StringRelatedField(allow_null=True, help_text="null once the user is deleted.")

    class Meta:
        model = Job
        fields = [
            "id",
            "type",
            "status",
            "progress",
            "message",
            "data",
            "result_id",
            "retry_count",
            "error",
            "created_by",
            "created_at",
            "start_by",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields
