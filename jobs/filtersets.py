"""The jobs page's filters: kind, state, who asked and when."""

import django_filters
from django import forms

from jobs.models import Job, JobStatus, JobType

DATE_INPUT = forms.DateInput(attrs={"type": "date"})


class JobFilterSet(django_filters.FilterSet):
    """Jobs by kind (type), state (status), user name and the day they were asked for (both days
    included, in the configured time zone)."""

    type = django_filters.ChoiceFilter(choices=JobType.choices, empty_label="any", label="Kind")
    status = django_filters.ChoiceFilter(choices=JobStatus.choices, empty_label="any", label="State")
    user = django_filters.CharFilter(field_name="created_by__username", lookup_expr="iexact", label="User")
    date_from = django_filters.DateFilter(
        field_name="created_at", lookup_expr="date__gte", widget=DATE_INPUT, label="Asked from"
    )
    date_to = django_filters.DateFilter(
        field_name="created_at", lookup_expr="date__lte", widget=DATE_INPUT, label="Asked until"
    )

    class Meta:
        model = Job
        fields: list[str] = []
