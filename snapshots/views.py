"""Snapshot pages: the searchable list and one snapshot's values."""

from django.contrib.auth.mixins import LoginRequiredMixin
from django.views.generic import ListView

from snapshots.models import Snapshot


class SnapshotListView(LoginRequiredMixin, ListView):
    """Snapshots, newest first."""

    template_name = "snapshots/list.html"
    context_object_name = "snapshots"
    paginate_by = 50

    def get_queryset(self):
        return Snapshot.objects.for_list()
