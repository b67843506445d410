"""Snapshot filters shared by the API and the snapshot list page."""

import django_filters
from django.db.models import Q

from snapshots.models import Snapshot, SnapshotOrigin


class SnapshotFilterSet(django_filters.FilterSet):
    """Search snapshots by text, author, tag, origin and date range."""

    search = django_filters.CharFilter(method="filter_search", label="Text in title or comment")
    author = django_filters.CharFilter(field_name="created_by__username", label="Author's user name")
    tag = django_filters.CharFilter(field_name="tags__name", label="Snapshot tag name (e.g. golden)")
    origin = django_filters.ChoiceFilter(choices=SnapshotOrigin.choices)
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Snapshot
        fields: list[str] = []

    def filter_search(self, queryset, name, value):
        text = value.strip()
        return queryset.filter(Q(title__icontains=text) | Q(comment__icontains=text)) if text else queryset
