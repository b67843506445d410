"""Filters the lists share (jobs, restores, snapshots): who made a row, and the days it was made.

Each is a function returning new filters, for a FilterSet to declare where its form shows them
(a FilterSet orders its fields as declared; a base class's would come first).
"""

import django_filters
from django import forms

DATE_INPUT = forms.DateInput(attrs={"type": "date"})


def user_filter(label: str = "User") -> django_filters.CharFilter:
    """Rows whose `created_by` user has this name (any case)."""
    return django_filters.CharFilter(field_name="created_by__username", lookup_expr="iexact", label=label)


def day_filters(from_label: str, until_label: str) -> tuple[django_filters.DateFilter, django_filters.DateFilter]:
    """(date_from, date_to): rows whose `created_at` falls on or after, on or before a day (both
    days included, in the configured time zone), with a date picker."""
    return tuple(
        django_filters.DateFilter(field_name="created_at", lookup_expr=lookup, widget=DATE_INPUT, label=label)
        for lookup, label in (("date__gte", from_label), ("date__lte", until_label))
    )
