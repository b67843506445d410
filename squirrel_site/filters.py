"""Filters the lists share (jobs, restores, snapshots): who made a row, and the days it was made.

Each is a function returning new filters, for a FilterSet to declare where its form shows them
(a FilterSet orders its fields as declared; a base class's would come first).
"""

import django_filters

from squirrel_site.pages import MomentFilter


def user_filter(label: str = "User") -> django_filters.CharFilter:
    """Rows whose `created_by` user has this name (any case)."""
    return django_filters.CharFilter(field_name="created_by__username", lookup_expr="iexact", label=label)


def day_filters(from_label: str, until_label: str) -> tuple[MomentFilter, MomentFilter]:
    """(date_from, date_to): rows whose `created_at` is at or after a moment, and at or before one
    (what was typed included: a day, a minute or a second, ISO and 24-hour, in the configured time
    zone; squirrel_site.pages.MomentFilter)."""
    return (
        MomentFilter(field_name="created_at", label=from_label),
        MomentFilter(field_name="created_at", until=True, label=until_label),
    )
