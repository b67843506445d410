"""The jobs page's filters: kind, state, who asked and when."""

import django_filters

from jobs.models import Job, JobStatus, JobType
from squirrel_site.filters import day_filters, user_filter


class JobFilterSet(django_filters.FilterSet):
    """Jobs by kind (type), state (status), user name and the day they were asked for (both days
    included, in the configured time zone)."""

    type = django_filters.ChoiceFilter(choices=JobType.choices, empty_label="any", label="Kind")
    status = django_filters.ChoiceFilter(choices=JobStatus.choices, empty_label="any", label="State")
    user = user_filter()
    date_from, date_to = day_filters("Asked from", "Asked until")

    class Meta:
        model = Job
        fields: list[str] = []
