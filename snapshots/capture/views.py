"""Snapshot pages: the searchable list (and taking a snapshot), and how the snapshot page shows and
sorts a saved value (the page itself is snapshots.restore.views.SnapshotDetailView: it filters
against live values and starts restores)."""

import json

from django.contrib import messages
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, F, Q
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.views import View

from snapshots.capture.actions import edit_snapshot, request_snapshot
from snapshots.capture.filtersets import SnapshotListFilterSet
from snapshots.capture.forms import EditSnapshotForm, TakeSnapshotForm
from snapshots.capture.models import GOLDEN_TAG, Snapshot, SnapshotOrigin
from snapshots.capture.services import SnapshotError
from squirrel_site.audit import AuditVia
from squirrel_site.epics_values import display_text, to_json
from squirrel_site.pages import with_query

SNAPSHOTS_PER_PAGE = 50
# The list page's filters (created_after / created_before are the API's timestamps).
LIST_FILTERS = ("search", "author", "tag", "origin", "date_from", "date_to", "undo_points")


class SnapshotListView(PermissionRequiredMixin, View):
    """Snapshots, newest first, searchable; POST takes a new one (snapshots.add_snapshot)."""

    permission_required = "snapshots.view_snapshot"

    def get(self, request):
        return self.render(request, TakeSnapshotForm(user=request.user, prefix="take"))

    def post(self, request):
        if not request.user.has_perm("snapshots.add_snapshot"):
            raise PermissionDenied("Taking snapshots needs the permission snapshots.add_snapshot.")
        form = TakeSnapshotForm(request.POST, user=request.user, prefix="take")
        if not form.is_valid():
            return self.render(request, form, status=400)
        job = request_snapshot(user=request.user, via=AuditVia.PAGE, params=form.job_data())
        messages.success(request, f"Snapshot “{form.cleaned_data['title']}” is being taken (job #{job.id}).")
        return redirect("jobs:detail", job.id)

    def render(self, request, take_form, status=200):
        filterset = SnapshotListFilterSet(request.GET, queryset=Snapshot.objects.for_list())
        snapshots = filterset.qs if filterset.is_valid() else Snapshot.objects.none()
        paginator, hidden = Paginator(snapshots, SNAPSHOTS_PER_PAGE), 0
        if filterset.is_valid() and filterset.hides_undo_points():
            # One query counts the page's snapshots and the undo points the switch hides.
            undo_point = Q(origin=SnapshotOrigin.PRE_RESTORE)
            counts = filterset.with_undo_points.order_by().aggregate(
                shown=Count("id", filter=~undo_point, distinct=True),
                hidden=Count("id", filter=undo_point, distinct=True),
            )
            paginator.count, hidden = counts["shown"], counts["hidden"]
        page = paginator.get_page(request.GET.get("page"))
        context = {
            "filterset": filterset,
            "filter_fields": [filterset.form[name] for name in LIST_FILTERS],
            "page": page,
            "snapshots": [(snapshot, is_golden(snapshot)) for snapshot in page],
            "take_form": take_form if request.user.has_perm("snapshots.add_snapshot") else None,
            "page_query": with_query(request.GET, page=None),
            "hidden_undo_points": hidden,
            "show_undo_points_url": with_query(request.GET, undo_points="on", page=None),
        }
        return TemplateResponse(request, "snapshots/list.html", context, status=status)


class EditSnapshotView(PermissionRequiredMixin, View):
    """A snapshot's title, comment and tags (snapshots.change_snapshot; golden needs the admin
    role): the snapshot page embeds the form; this page shows it alone, and again with its errors
    (400). Each change is audited by snapshots.capture.actions.edit_snapshot."""

    permission_required = "snapshots.change_snapshot"
    permission_denied_message = "Editing snapshots needs the permission to change them (snapshots.change_snapshot)."

    def get(self, request, pk):
        snapshot = get_object_or_404(Snapshot.objects.for_list(), pk=pk)
        return self.render(request, snapshot, EditSnapshotForm(snapshot=snapshot, user=request.user))

    def post(self, request, pk):
        snapshot = get_object_or_404(Snapshot.objects.for_list(), pk=pk)
        form = EditSnapshotForm(request.POST, snapshot=snapshot, user=request.user)
        if not form.is_valid():
            return self.render(request, snapshot, form, status=400)
        data = form.cleaned_data
        try:
            edited = edit_snapshot(
                snapshot,
                user=request.user,
                via=AuditVia.PAGE,
                title=data["title"],
                comment=data["comment"],
                tags=form.new_tags(),
            )
        except SnapshotError as exc:  # a protected tag changed meanwhile by someone else's form
            form.add_error(None, str(exc))
            return self.render(request, snapshot, form, status=400)
        messages.success(request, f"Snapshot “{edited.title}” saved.")
        return redirect("snapshots:detail", snapshot.pk)

    def render(self, request, snapshot, form, status=200):
        context = {"snapshot": snapshot, "edit_form": form}
        return TemplateResponse(request, "snapshots/edit.html", context, status=status)


def is_golden(snapshot) -> bool:
    return any(tag.name == GOLDEN_TAG for tag in snapshot.tags.all())


# Sort keys of the snapshot page, (ascending, descending); the PV name breaks ties, so every
# order is total and stable across pages.
VALUE_SORTS = {
    "name": (("pv_name",), ("-pv_name",)),
    "device": ((F("pv__device").asc(nulls_last=True), "pv_name"), (F("pv__device").desc(nulls_last=True), "pv_name")),
    "severity": ((F("severity").asc(nulls_first=True), "pv_name"), (F("severity").desc(nulls_last=True), "pv_name")),
    "type": (("value_type", "pv_name"), ("-value_type", "pv_name")),
}
VALUE_COLUMNS = [("name", "PV"), ("device", "Device"), ("type", "Type"), ("severity", "Severity")]


def value_order(sort: str) -> tuple[str, tuple]:
    """The (valid sort key, ORDER BY) for the `sort` parameter; unknown keys sort by name."""
    key = sort.lstrip("-")
    if key not in VALUE_SORTS:
        return "name", VALUE_SORTS["name"][0]
    return sort, VALUE_SORTS[key][sort.startswith("-")]


def value_row(value) -> dict:
    """What the snapshot page shows of one value, with the attributes live.js compares against."""
    pv = value.pv
    shown = {"enum_labels": value.enum_labels, "precision": value.precision, "units": value.units}
    return {
        "value": value,
        "pv": pv,
        "setpoint": display_text(value.value_type, value.setpoint_value, **shown),
        "readback": display_text(value.value_type, value.readback_value, **shown),
        "saved_json": json.dumps(to_json(value.setpoint_value)),
        "live_address": pv.setpoint_address if pv else "",
        "live_readback_address": pv.readback_address if pv else "",
        # From the archive: how old the sample was at the snapshot's time, shown beside the value.
        "sample_age": age_text(value.age) if value.archiver and value.age is not None else "",
    }


def age_text(seconds: float) -> str:
    """An age as people read it: "0.4 s", "42 s", "12 min", "3.5 h", "2.0 d"."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"
