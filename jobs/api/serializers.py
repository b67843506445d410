"""Job serializers."""

from rest_framework import serializers

from jobs.models import Job


class JobSerializer(serializers.ModelSerializer):
    """A job's state; `result_url` points at what it produced when it succeeded."""

    created_by = serializers.StringRelatedField()

    class Meta:
        model = Job
        fields = [
            "id", "type", "status", "progress", "message", "data", "result_id", "retry_count", "error",
            "created_by", "created_at", "started_at", "finished_at",
        ]
        read_only_fields = fields
