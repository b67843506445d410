"""Restore from the pages: the snapshot page (choose rows), preview, confirm (a job), follow it, see
results, undo.

Reading needs view_restorepreview or view_restore; making a preview, executing it and undoing
need snapshots.add_restore, as in the API. The services (snapshots.restore.preview,
snapshots.restore.actions) decide everything; these views only call them.
"""

import math

from django.contrib import messages
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.db import transaction
from django.db.models import Count
from django.http import QueryDict
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.views import View

from jobs.models import Job, JobType
from jobs.outbox import enqueue
from pvs.archiver import archivers
from pvs.models import PV
from snapshots.capture.forms import EditSnapshotForm
from snapshots.capture.models import Snapshot, SnapshotValue
from snapshots.capture.views import VALUE_COLUMNS, is_golden, value_order, value_row
from snapshots.comparison.filtersets import SnapshotValueFilterSet
from snapshots.comparison.rules import delta
from snapshots.restore.actions import request_restore, request_undo
from snapshots.restore.claim import execution_refusal
from snapshots.restore.errors import NeedsChannelAccess, RestoreError
from snapshots.restore.filtersets import RestoreFilterSet, is_undo
from snapshots.restore.forms import ExecuteRestoreForm, RestoreScope, RestoreSelectionForm
from snapshots.restore.models import Restore, RestoreAction, RestoreItemStatus, RestorePreview
from snapshots.restore.preview import preview_restore
from squirrel_site.audit import AuditVia
from squirrel_site.epics_values import delta_text, display_text, is_labelled
from squirrel_site.pages import offset_page, sort_columns, with_query

FILTER_PREFIX = "filter-"


class CanRestoreMixin(PermissionRequiredMixin):
    """Restoring writes to the machine: snapshots.add_restore, else a 403 page that says so
    (anonymous requests go to the login page)."""

    permission_required = "snapshots.add_restore"
    permission_denied_message = "Restoring needs the permission to add restores (snapshots.add_restore)."


class SnapshotDetailView(PermissionRequiredMixin, View):
    """The snapshot page: one snapshot's values with a live column, filtered (against live values
    too), sorted and paged on the server, and the rows to restore chosen there."""

    permission_required = "snapshots.view_snapshot"

    def get(self, request, pk):
        snapshot = get_object_or_404(Snapshot.objects.for_list(), pk=pk)
        filterset = SnapshotValueFilterSet(request.GET, queryset=snapshot.values.all())
        sort, order = value_order(request.GET.get("sort", "name"))
        if filterset.is_valid():
            values = filterset.qs
            filtered = any(value not in (None, "", False) for value in filterset.form.cleaned_data.values())
        else:
            values, filtered = snapshot.values.none(), True
        values = values.select_related("pv").prefetch_related("pv__page_tags").order_by(*order)
        # The count is free when nothing is filtered, and the live filters computed it already.
        count = snapshot.pv_count if not filtered else filterset.row_count
        page = offset_page(request.GET, values, count=count)
        context = {
            "snapshot": snapshot,
            "golden": is_golden(snapshot),
            "filterset": filterset,
            "filtered": filtered,
            "page": page,
            "rows": [value_row(value) for value in page.rows],
            "archived": bool(archivers()),  # each row's History control (static/squirrel/history.js)
            "columns": sort_columns(request.GET, sort, VALUE_COLUMNS),
            "filter_params": [(k, v) for k in request.GET if k not in ("page", "sort") for v in request.GET.getlist(k)],
            "restore_form": RestoreSelectionForm() if request.user.has_perm("snapshots.add_restore") else None,
            "restores": snapshot.restores.select_related("created_by").order_by("-id")[:5],
            "edit_form": (
                EditSnapshotForm(snapshot=snapshot, user=request.user)
                if request.user.has_perm("snapshots.change_snapshot")
                else None
            ),
        }
        return TemplateResponse(request, "snapshots/detail.html", context)


class CreatePreviewView(CanRestoreMixin, View):
    """POST from the snapshot page: preview restoring the checked, the filtered or all rows."""

    def post(self, request, pk):
        snapshot = get_object_or_404(Snapshot, pk=pk)
        form = RestoreSelectionForm(request.POST)
        back = redirect_to_snapshot(snapshot, request.POST)
        if not form.is_valid():
            for error in form.errors.get("__all__", []) + _field_errors(form):
                messages.error(request, error)
            return back
        scope, pvs = form.cleaned_data["scope"], None  # None: every PV of the snapshot
        if scope == RestoreScope.CHECKED:
            pvs = form.cleaned_data["pv"]
        elif scope == RestoreScope.FILTERED:
            filterset = SnapshotValueFilterSet(_filters(request.POST), queryset=snapshot.values.all())
            if not filterset.is_valid():
                messages.error(request, "The filters are not valid; fix them and try again.")
                return back
            pvs = PV.objects.filter(pk__in=filterset.qs.exclude(pv=None).values("pv_id"))
        pvs = form.limit(pvs)
        pv_set = form.cleaned_data["pv_set"]
        if pv_set is not None and not snapshot.values.filter(pv__in=pvs.values("pk")).exists():
            messages.error(request, f"None of these PVs of the set “{pv_set.name}” is in this snapshot.")
            return back
        include_unchanged = form.cleaned_data["include_unchanged"]
        try:
            preview = preview_restore(
                snapshot, created_by=request.user, pvs=pvs, include_unchanged=include_unchanged, cache_only=True
            )
        except NeedsChannelAccess:
            # This process never reads Channel Access: a worker makes the preview.
            job_data = {"snapshot": snapshot.pk, "selection": None, "include_unchanged": include_unchanged}
            if pvs is not None:
                job_data["pv_ids"] = list(pvs.values_list("pk", flat=True))
            return _enqueue_preview(request, job_data)
        return redirect("snapshots:restore_preview", preview.pk)


def _enqueue_preview(request, data: dict):
    """Hand the preview to a worker and follow its job; the job page opens the preview."""
    with transaction.atomic():
        job = enqueue(JobType.PREVIEW, user=request.user, data=data)
    return _follow_preview_job(request, job)


def _follow_preview_job(request, job):
    """The job page of a preview a worker makes, saying why it is not ready yet."""
    messages.info(request, "The monitor's cache cannot serve these PVs now: a worker is reading them for the preview.")
    return redirect("jobs:detail", job.pk)


def _filters(post) -> QueryDict:
    """The snapshot page's filters, which its restore form carries as `filter-<name>` fields."""
    filters = QueryDict(mutable=True)
    for key in post:
        if key.startswith(FILTER_PREFIX):
            filters.setlist(key[len(FILTER_PREFIX) :], post.getlist(key))
    return filters


def _field_errors(form) -> list[str]:
    return [
        f"{form.fields[name].label or name}: {error}"
        for name, errors in form.errors.items()
        if name != "__all__"
        for error in errors
    ]


def redirect_to_snapshot(snapshot, post):
    """Back to the snapshot page with the filters it was showing."""
    response = redirect("snapshots:detail", snapshot.pk)
    filters = _filters(post)
    if filters:
        response["Location"] += f"?{filters.urlencode()}"
    return response


# Preview tabs: which items a tab shows, and the preview's count field for it.
PREVIEW_TABS = [
    (RestoreAction.WRITE, "To write", "write_count"),
    (RestoreAction.SKIP_UNCHANGED, "Unchanged", "unchanged_count"),
    (RestoreAction.SKIP_READ_ONLY, "Read-only", "read_only_count"),
    (RestoreAction.SKIP_DISCONNECTED, "Disconnected", "disconnected_count"),
    (RestoreAction.SKIP_NO_WRITE_ACCESS, "No write access", "no_write_access_count"),
    (RestoreAction.SKIP_NO_SAVED_VALUE, "No saved value", "no_saved_value_count"),
    (RestoreAction.SKIP_NOT_IN_REGISTRY, "Not in registry", "not_in_registry_count"),
    (RestoreAction.SKIP_NOT_WRITABLE, "Not writable", "not_writable_count"),
]


class PreviewView(PermissionRequiredMixin, View):
    """What a restore would do, PV by PV, with the confirm form (or why it can no longer run)."""

    permission_required = "snapshots.view_restorepreview"

    def get(self, request, pk):
        return self.render(request, get_object_or_404(_previews(), pk=pk))

    def render(self, request, preview, form=None, status=200):
        restore = Restore.objects.filter(preview=preview).select_related("job").first()
        tabs = [(action, label, getattr(preview, field)) for action, label, field in PREVIEW_TABS]
        default = RestoreAction.WRITE if preview.write_count else "all"
        action = request.GET.get("action", default)
        if action not in RestoreAction.values:
            action = "all"
        items = preview.items.order_by("pv_name")
        if action != "all":
            items = items.filter(action=action)
        page = offset_page(request.GET, items, count=preview.selection_size if action == "all" else None)
        shown_as = _shown_as(preview.snapshot_id, page.rows)
        running_job = _preview_job(preview) if restore is None else None
        context = {
            "preview": preview,
            "restore": restore,
            "running_job": running_job,
            # A restore or a job already exists: the page shows them, not whether it could run.
            "refusal": execution_refusal(preview) if restore is None and running_job is None else None,
            "form": form or ExecuteRestoreForm(),
            "can_restore": request.user.has_perm("snapshots.add_restore"),
            "tabs": [
                (key, label, count, with_query(request.GET, action=key, page=None))
                for key, label, count in tabs
                if count
            ],
            "all_url": with_query(request.GET, action="all", page=None),
            "action": action,
            "page": page,
            "rows": [_preview_row(item, shown_as) for item in page.rows],
            "stages": _stages(preview, action),
        }
        return TemplateResponse(request, "snapshots/restore_preview.html", context, status=status)


def _previews():
    return RestorePreview.objects.select_related("snapshot", "created_by")


def _preview_job(preview):
    """The newest unfinished job executing `preview` before its worker created the restore."""
    return (
        Job.objects.filter(type=JobType.RESTORE, data__preview=preview.pk, status__in=["pending", "running"])
        .order_by("-id")
        .first()
    )


def _shown_as(snapshot_id: int, items) -> dict[str, dict]:
    """How the snapshot showed each item's PV (enum labels, precision, units), by name: one query."""
    rows = SnapshotValue.objects.filter(snapshot_id=snapshot_id, pv_name__in=[item.pv_name for item in items])
    return {
        name: {"enum_labels": labels, "precision": precision, "units": units}
        for name, labels, precision, units in rows.values_list("pv_name", "enum_labels", "precision", "units")
    }


def _shown(item, value, shown_as: dict) -> str:
    return display_text(item.value_type, value, **shown_as.get(item.pv_name, {}))


def _cells(item, shown_as: dict, **values) -> dict:
    """Each of `values` as the snapshot showed its PV (enum labels, precision, units), with an
    enum's index beside it (`<name>_index`, for a tooltip)."""
    enum = is_labelled(item.value_type)
    cells = {}
    for name, value in values.items():
        cells[name] = _shown(item, value, shown_as)
        cells[f"{name}_index"] = value if enum and value is not None else None
    return cells


def _delta_cell(item, shown_as: dict, reference, value) -> str:
    """value − reference, signed and with units (epics_values.delta_text); "" without one."""
    shown = shown_as.get(item.pv_name, {})
    difference = magnitude_signed(delta(reference, value, item.value_type))
    if difference is None:
        return ""
    return delta_text(difference, shown.get("precision"), shown.get("units") or "")


def _preview_row(item, shown_as: dict) -> dict:
    """A preview item's row: the target and the setpoint seen, Δ setpoint − target."""
    target, live = item.target_value, item.live_value
    return {
        "item": item,
        **_cells(item, shown_as, target=target, live=live),
        "delta": _delta_cell(item, shown_as, target, live),
    }


def _restore_row(item, shown_as: dict) -> dict:
    """A restore item's row: target, the value before, the read-back, Δ read-back − target."""
    target, readback = item.target_value, item.readback_value
    return {
        "item": item,
        **_cells(item, shown_as, target=target, old=item.old_value, readback=readback),
        "delta": _delta_cell(item, shown_as, target, readback),
    }


def magnitude_signed(difference):
    """A number's difference as it is; an array's element difference of the largest size (as the
    snapshot page's live Δ shows it); None for none."""
    if isinstance(difference, list):
        return max(difference, key=lambda d: math.inf if math.isnan(d) else abs(d), default=None)
    return difference


def _stages(preview, action: str) -> list[tuple[int, int]]:
    """(stage, PVs) of the items this tab shows, in the order a restore writes them."""
    items = preview.items.all() if action == "all" else preview.items.filter(action=action)
    return list(items.order_by("stage").values_list("stage").annotate(n=Count("id")).values_list("stage", "n"))


class ExecutePreviewView(CanRestoreMixin, View):
    """Confirm a preview: the restore runs as a job, followed on the job page."""

    def post(self, request, pk):
        preview = get_object_or_404(_previews(), pk=pk)
        form = ExecuteRestoreForm(request.POST)
        if not form.is_valid():
            return PreviewView().render(request, preview, form=form, status=400)
        try:
            job = request_restore(preview, user=request.user, via=AuditVia.PAGE, **form.cleaned_data)
        except RestoreError:
            # The preview page says why (it checks again), with a way back to make a new one.
            return redirect("snapshots:restore_preview", preview.pk)
        return redirect("jobs:detail", job.pk)


# Restore result tabs: the statuses that count as a problem come first.
PROBLEM_STATUSES = [
    RestoreItemStatus.MISMATCH,
    RestoreItemStatus.DISCONNECTED,
    RestoreItemStatus.NO_WRITE_ACCESS,
    RestoreItemStatus.TIMEOUT,
    RestoreItemStatus.FAILED,
]


class RestoreView(PermissionRequiredMixin, View):
    """A restore: progress while it runs, then the per-PV results, and an undo button."""

    permission_required = "snapshots.view_restore"

    def get(self, request, pk):
        restore = get_object_or_404(
            Restore.objects.select_related("snapshot", "created_by", "job", "undo_snapshot", "preview"), pk=pk
        )
        counts = restore.summary or dict(
            restore.items.order_by().values_list("status").annotate(n=Count("id")).values_list("status", "n")
        )
        status = request.GET.get("status", "all")
        if status not in RestoreItemStatus.values and status != "problems":
            status = "all"
        items = restore.items.order_by("stage", "pv_name")
        if status == "problems":
            items = items.filter(status__in=PROBLEM_STATUSES)
        elif status != "all":
            items = items.filter(status=status)
        page = offset_page(request.GET, items, count=sum(counts.values()) if status == "all" else None)
        shown_as = _shown_as(restore.snapshot_id, page.rows)
        context = {
            "restore": restore,
            "job": restore.job if restore.job and not restore.is_finished else None,
            "counts": [
                (key, label, counts.get(key, 0), with_query(request.GET, status=key, page=None))
                for key, label in RestoreItemStatus.choices
                if counts.get(key)
            ],
            "problems": sum(counts.get(key, 0) for key in PROBLEM_STATUSES),
            "problems_url": with_query(request.GET, status="problems", page=None),
            "all_url": with_query(request.GET, status="all", page=None),
            "status": status,
            "page": page,
            "rows": [_restore_row(item, shown_as) for item in page.rows],
            "stages": list(
                restore.items.order_by("stage").values_list("stage").annotate(n=Count("id")).values_list("stage", "n")
            ),
            "can_undo": request.user.has_perm("snapshots.add_restore") and restore.undo_snapshot_id is not None,
        }
        return TemplateResponse(request, "snapshots/restore.html", context)


RESTORES_PER_PAGE = 50


class RestoreListView(PermissionRequiredMixin, View):
    """Every restore, newest first: who, when, which snapshot, the result per status, a link to
    the per-PV results; filtered, paged by offset."""

    permission_required = "snapshots.view_restore"

    def get(self, request):
        restores = Restore.objects.select_related("snapshot", "created_by", "preview").order_by("-id")
        filterset = RestoreFilterSet(request.GET, queryset=restores)
        valid = filterset.is_valid()
        page = offset_page(request.GET, filterset.qs if valid else restores.none(), size=RESTORES_PER_PAGE)
        context = {
            "filterset": filterset,
            "page": page,
            "rows": [
                (
                    restore,
                    is_undo(restore),
                    [
                        (label, restore.summary[key])
                        for key, label in RestoreItemStatus.choices
                        if (restore.summary or {}).get(key)
                    ],
                )
                for restore in page.rows
            ],
        }
        return TemplateResponse(request, "snapshots/restore_list.html", context, status=200 if valid else 400)


class UndoRestoreView(CanRestoreMixin, View):
    """A preview that puts back what the restore changed; confirm it like any other."""

    def post(self, request, pk):
        restore = get_object_or_404(Restore, pk=pk)
        try:
            result = request_undo(restore, user=request.user, via=AuditVia.PAGE)
        except RestoreError as exc:
            messages.error(request, str(exc))
            return redirect("snapshots:restore", restore.pk)
        if isinstance(result, Job):
            return _follow_preview_job(request, result)
        messages.info(request, f"Undo of restore #{restore.pk}: check this preview, then confirm it.")
        return redirect("snapshots:restore_preview", result.pk)
