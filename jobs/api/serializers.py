"""Job serializers."""

from django.urls import reverse
from django.utils.http import urlencode
from rest_framework import serializers

from jobs.models import Job


class JobSerializer(serializers.ModelSerializer):
    """A job's state; `result_id` is what it produced (a snapshot or a restore) when it succeeded.
    A job not started by `start_by` (restores) ends `expired`, having done nothing."""

    created_by = serializers.StringRelatedField(allow_null=True, help_text="null once the user is deleted.")
    compare_url = serializers.SerializerMethodField(
        help_text="A snapshot job taken to compare with the archive (POST compare/archive/), once it succeeded: "
        "the comparison's API URL (compare/?a=...&b=...); else null."
    )

    def get_compare_url(self, job) -> str | None:
        query = job.comparison_query()
        return f"{reverse('snapshots-api:compare')}?{urlencode(query)}" if query is not None else None

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
            "compare_url",
            "retry_count",
            "error",
            "created_by",
            "created_at",
            "start_by",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields
