"""The jobs page's filters: kind, state, who asked and when."""

import django_filters

from jobs.models import Job, JobStatus, JobType
from squirrel_site.pages import MomentFilter


class JobFilterSet(django_filters.FilterSet):
    """Jobs by kind (type), state (status), user name and the day they were asked for (both days
    included, in the configured time zone)."""

    type = django_filters.ChoiceFilter(choices=JobType.choices, empty_label="any", label="Kind")
    status = django_filters.ChoiceFilter(choices=JobStatus.choices, empty_label="any", label="State")
    user = django_filters.CharFilter(field_name="created_by__username", lookup_expr="iexact", label="User")
    date_from = MomentFilter(field_name="created_at", label="Asked from")
    date_to = MomentFilter(field_name="created_at", until=True, label="Asked until")

    class Meta:
        model = Job
        fields: list[str] = []
