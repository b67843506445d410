"""The snapshot page's value filters: by the PV's tag, group or device, by name and severity, and
against the live values in Redis (out of tolerance, disconnected now)."""

import django_filters
from django import forms
from django.db.models import BooleanField, Exists, OuterRef
from django.db.models.expressions import RawSQL

from pvs.models import PV, address_contains
from snapshots.capture.models import Severity, SnapshotValue
from snapshots.comparison.live_rows import disconnected_now, out_of_tolerance
from tags.models import Tag, TagGroup


class LiveConnection:
    """Choices of the snapshot page's connection filter."""

    SAVED = "saved"
    LIVE = "live"
    choices = [(SAVED, "Disconnected in the snapshot"), (LIVE, "Disconnected now")]


class SnapshotValueFilterSet(django_filters.FilterSet):
    """Select a snapshot's values by the PV's tag, tag group or device, by name and severity, and
    (against the live values in Redis) out of tolerance or disconnected now.

    The live filters come last: they read the live value of every row the other filters left.
    """

    tag = django_filters.ModelChoiceFilter(
        queryset=Tag.objects.select_related("group"), method="filter_tag", label="Tag", empty_label="any"
    )
    tag_group = django_filters.ModelChoiceFilter(
        queryset=TagGroup.objects.all(), method="filter_tag_group", label="Tag group", empty_label="any"
    )
    device = django_filters.CharFilter(field_name="pv__device", lookup_expr="istartswith", label="Device prefix")
    name = django_filters.CharFilter(method="filter_name", label="Name contains")
    severity = django_filters.ChoiceFilter(
        choices=Severity.choices[1:], method="filter_severity", label="Severity at least", empty_label="any"
    )
    connection = django_filters.ChoiceFilter(
        choices=LiveConnection.choices, method="filter_connection", label="Connection", empty_label="any"
    )
    out_of_tolerance = django_filters.BooleanFilter(
        method="filter_out_of_tolerance", widget=forms.CheckboxInput, label="Out of tolerance (vs live)"
    )

    class Meta:
        model = SnapshotValue
        fields: list[str] = []

    def filter_name(self, queryset, name, value):
        # ``ca://X`` and ``PVA://X`` as the registry spells them (pvs.models.address_contains).
        return queryset.filter(address_contains("pv_name", value))

    def filter_tag(self, queryset, name, value):
        return queryset.filter(Exists(PV.tags.through.objects.filter(pv_id=OuterRef("pv_id"), tag=value)))

    def filter_tag_group(self, queryset, name, value):
        return queryset.filter(Exists(PV.tags.through.objects.filter(pv_id=OuterRef("pv_id"), tag__group=value)))

    def filter_severity(self, queryset, name, value):
        return queryset.filter(severity__gte=int(value))

    def filter_connection(self, queryset, name, value):
        if value == LiveConnection.SAVED:
            return queryset.filter(connected=False)
        return self._keep(queryset, disconnected_now(queryset))

    def filter_out_of_tolerance(self, queryset, name, value):
        if not value:
            return queryset
        return self._keep(queryset, out_of_tolerance(queryset))

    def _keep(self, queryset, ids: list[int]):
        # The live filters run last, each on what the others left: the last one's ids are the
        # result, so the page knows its row count without a COUNT.
        self.live_row_count = len(ids)
        # One array parameter, which PostgreSQL hashes: a 50,000-element IN list would be 50,000
        # parameters, and IN (SELECT unnest(...)) joins row by row.
        return queryset.filter(RawSQL(f'"{SnapshotValue._meta.db_table}"."id" = ANY(%s)', [ids], BooleanField()))

    @property
    def row_count(self) -> int | None:
        """How many rows the live filters left, None when none was used (rows not counted)."""
        self.qs  # noqa: B018 - the filters run when the queryset is first built
        return getattr(self, "live_row_count", None)
