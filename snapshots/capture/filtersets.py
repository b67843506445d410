"""The snapshot list's filters, shared by the API and the snapshot list page."""

from datetime import UTC

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q

from snapshots.capture.models import Snapshot, SnapshotOrigin, SnapshotTag
from squirrel_site.pages import MomentFilter


class UTCDateTimeField(django_filters.fields.IsoDateTimeField):
    """An ISO 8601 date-time, turned into UTC: PostgreSQL refuses offsets beyond 15:59, which ISO
    8601 and Python allow (a 500 when one reached the query)."""

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise ValidationError("Enter a date-time between the years 1 and 9999 in UTC.", code="invalid") from None


class UTCDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UTCDateTimeField


class SnapshotFilterSet(django_filters.FilterSet):
    """Search snapshots by text, author, tag, origin and date range."""

    search = django_filters.CharFilter(method="filter_search", label="Title or comment")
    author = django_filters.CharFilter(
        field_name="created_by__username", lookup_expr="iexact", label="Author (user name)"
    )
    tag = django_filters.ModelChoiceFilter(
        field_name="tags",
        to_field_name="name",
        queryset=SnapshotTag.objects.all(),
        label="Tag",
        empty_label="any",
    )
    origin = django_filters.ChoiceFilter(choices=SnapshotOrigin.choices, empty_label="any")
    date_from = MomentFilter(field_name="created_at", label="Taken from")
    date_to = MomentFilter(field_name="created_at", until=True, label="Taken until")
    created_after = UTCDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UTCDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Snapshot
        fields: list[str] = []

    def filter_search(self, queryset, name, value):
        text = value.strip()
        return queryset.filter(Q(title__icontains=text) | Q(comment__icontains=text)) if text else queryset


class SnapshotListFilterSet(SnapshotFilterSet):
    """The snapshot list page's filters: the API's, and automatic undo points ("Before restore
    #n", origin pre_restore) hidden unless asked for, by the switch or by choosing that origin."""

    undo_points = django_filters.BooleanFilter(
        method="filter_undo_points", widget=forms.CheckboxInput, label="Show automatic undo points"
    )

    def filter_undo_points(self, queryset, name, value):
        return queryset  # applied in filter_queryset, which also sees the origin chosen

    def hides_undo_points(self) -> bool:
        data = self.form.cleaned_data
        return not data.get("undo_points") and data.get("origin") != SnapshotOrigin.PRE_RESTORE

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        self.with_undo_points = queryset
        return queryset.exclude(origin=SnapshotOrigin.PRE_RESTORE) if self.hides_undo_points() else queryset
