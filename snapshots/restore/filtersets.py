"""The restores page's filters: kind (restore or undo), state, who and when."""

import django_filters

from snapshots.capture.models import SnapshotOrigin
from snapshots.restore.models import Restore, RestoreStatus
from squirrel_site.pages import MomentFilter

RESTORE, UNDO = "restore", "undo"


class RestoreFilterSet(django_filters.FilterSet):
    """Restores by kind (an undo restores an automatic undo point), state, user name, snapshot
    title and the day they were asked for (both days included, in the configured time zone)."""

    kind = django_filters.ChoiceFilter(
        choices=[(RESTORE, "Restore of a snapshot"), (UNDO, "Undo of a restore")],
        empty_label="any",
        method="filter_kind",
        label="Kind",
    )
    status = django_filters.ChoiceFilter(choices=RestoreStatus.choices, empty_label="any", label="State")
    user = django_filters.CharFilter(field_name="created_by__username", lookup_expr="iexact", label="User")
    snapshot = django_filters.CharFilter(field_name="snapshot__title", lookup_expr="icontains", label="Snapshot title")
    date_from = MomentFilter(field_name="created_at", label="Asked from")
    date_to = MomentFilter(field_name="created_at", until=True, label="Asked until")

    class Meta:
        model = Restore
        fields: list[str] = []

    def filter_kind(self, queryset, name, value):
        undo = queryset.filter(snapshot__origin=SnapshotOrigin.PRE_RESTORE)
        return undo if value == UNDO else queryset.exclude(snapshot__origin=SnapshotOrigin.PRE_RESTORE)


def is_undo(restore: Restore) -> bool:
    """An undo restores the automatic snapshot taken before the restore it undoes."""
    return restore.snapshot.origin == SnapshotOrigin.PRE_RESTORE
