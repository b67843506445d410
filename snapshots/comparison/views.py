"""Compare and drift pages: snapshot against snapshot or live values, and drift per tag.

The parameters are snapshots.comparison.forms.CompareForm's and PVFilterSet's, as in the API; the
rows come from snapshots.comparison.rows. Against live values each row carries the marks
static/squirrel/live.js follows (data-live-address on the live cell, data-saved and the tolerances
on the row), so the live column, the delta and the out-of-tolerance highlight keep updating after
the page loaded.
"""

import io
from datetime import UTC, datetime

import redis
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import urlencode
from django.views import View

from pvs.archiver import archivers
from snapshots.capture.models import Severity, Snapshot
from snapshots.comparison.archive import ArchiveComparisonError, request_archive_comparison
from snapshots.comparison.drift import drift_summary, golden_snapshot
from snapshots.comparison.forms import (
    LIVE,
    ArchiveComparisonForm,
    DriftForm,
    compare_parameters,
    field_errors,
    is_nway,
    nway_parameters,
    without_blanks,
)
from snapshots.comparison.nway import MAX_COLUMNS, compare_columns, write_nway_csv
from snapshots.comparison.rows import CSV_HEADER, NO_VALUE, compare, csv_cells, saved_json, write_csv
from snapshots.comparison.rules import MATCHING_STATUSES as MATCHING
from snapshots.comparison.rules import ComparisonStatus
from squirrel_site.audit import AuditVia
from squirrel_site.pages import Page, sort_columns, with_query
from tags.models import Tag, TagGroup

SNAPSHOT_CHOICES = 200  # newest snapshots offered in the A / B menus (any id can still be typed in a URL)
COLUMNS = [("name", "PV"), ("device", "Device"), ("delta", "Δ B − A"), ("status", "Status"), ("severity", "Severity")]
LIVE_UNAVAILABLE = "Live values are unavailable: Redis cannot be reached."
# Badge classes of squirrel.css for each status.
STATUS_BADGES = {
    ComparisonStatus.OUT_OF_TOLERANCE: "mismatch",
    ComparisonStatus.TYPE_CHANGED: "mismatch",
    ComparisonStatus.DISCONNECTED: "disconnected",
    ComparisonStatus.WITHIN: "verified",
    ComparisonStatus.EQUAL: "verified",
    ComparisonStatus.ONLY_IN_A: "",
    ComparisonStatus.ONLY_IN_B: "",
}
ALARM_CLASSES = {Severity.MINOR: "alarm-minor", Severity.MAJOR: "alarm-major", Severity.INVALID: "alarm-invalid"}
HIGHLIGHTED = (ComparisonStatus.OUT_OF_TOLERANCE, ComparisonStatus.TYPE_CHANGED)
LINKED_STATUSES = (ComparisonStatus.OUT_OF_TOLERANCE, ComparisonStatus.DISCONNECTED, ComparisonStatus.TYPE_CHANGED)


def snapshot_choices(*selected: Snapshot | None) -> list[Snapshot]:
    """The newest snapshots for a menu, plus any selected one that is older."""
    snapshots = list(Snapshot.objects.for_list()[:SNAPSHOT_CHOICES])
    known = {snapshot.pk for snapshot in snapshots}
    return snapshots + [s for s in selected if s is not None and s.pk not in known]


def alarm_class(side) -> str:
    """The alarm CSS class of a value cell: its severity, or that it has no value (a live value
    never received from the monitor is "never", any other missing value "disconnected")."""
    if side is None:
        return ""
    if side.value is None:
        return "alarm-never" if side.kind == NO_VALUE and side.address else "alarm-disconnected"
    return ALARM_CLASSES.get(side.severity, "")


def _form_context(request, form) -> dict:
    cleaned = getattr(form, "cleaned_data", {})
    chosen = cleaned.get("b")
    chosen = chosen if isinstance(chosen, list) else [chosen]
    # One B menu per column asked for (the form's "Add a column" adds more), at least one.
    b_values = without_blanks(request.GET).getlist("b") or [LIVE]
    return {
        "form": form,
        "b_values": b_values,
        "max_columns": MAX_COLUMNS,
        "snapshots": snapshot_choices(cleaned.get("a"), *chosen),
        "tags": Tag.objects.select_related("group"),
        "tag_groups": TagGroup.objects.all(),
        "statuses": ComparisonStatus.choices,
        "severities": Severity.choices[1:],
        "query": request.GET,
    }


class CompareView(PermissionRequiredMixin, View):
    """Snapshot A against snapshot B or live values: filters, sorting, pages, counts, CSV."""

    permission_required = "snapshots.view_snapshot"

    def get(self, request):
        # More than one column (`b` twice or more) is an N-way comparison: the reference against
        # several columns, one value, readback and Δ per column.
        nway = is_nway(request.GET)
        form, comparison, errors = (nway_parameters if nway else compare_parameters)(request.GET)
        context = _form_context(request, form)
        if comparison is None:
            # A first visit (no parameters) is a form, not an error.
            context["errors"] = errors if request.GET else {}
            return TemplateResponse(request, "snapshots/compare.html", context, status=400 if request.GET else 200)
        if request.GET.get("format") == "csv":
            return _csv_response(comparison, nway)
        number, size = form.page_number, form.rows_per_page
        try:
            result = (compare_columns if nway else compare)(comparison, offset=(number - 1) * size, limit=size)
        except redis.RedisError:
            context["unavailable"] = LIVE_UNAVAILABLE
            return TemplateResponse(request, "snapshots/compare.html", context, status=503)
        query = request.GET
        context.update(
            {
                "result": result,
                "read_at": datetime.fromtimestamp(result.read_at, UTC),
                "page": Page(result.rows, number, size, number * size < result.total, query, result.total),
                "csv_url": with_query(query, format="csv", page=None),
            }
        )
        context.update(_nway_context(comparison, result, query) if nway else _context(request, comparison, result))
        return TemplateResponse(request, "snapshots/compare.html", context)


def _context(request, comparison, result) -> dict:
    """What the page shows of a two-way comparison's page of rows."""
    query = request.GET
    return {
        "comparison": comparison,
        "live": comparison.live,
        "rows": [_row(row, comparison.live) for row in result.rows],
        "columns": sort_columns(query, comparison.sort, COLUMNS),
        "status_links": [
            (
                value,
                label,
                result.counts[value],
                with_query(query, status=value, differences_only=None, page=None),
                value in comparison.statuses,
            )
            for value, label in ComparisonStatus.choices
            if result.counts[value]
        ],
        "all_url": with_query(query, status=None, differences_only=None, page=None),
        "swap_url": with_query(query, a=comparison.b.pk, b=comparison.a.pk, page=None) if not comparison.live else "",
        "can_restore": request.user.has_perm("snapshots.add_restore"),
        "archived": bool(archivers()),  # each row's History control (static/squirrel/history.js)
        # Against the archive at a time (CompareArchiveView), for those who may take snapshots.
        "archive_form": (
            ArchiveComparisonForm(initial={"a": comparison.a.pk})
            if archivers() and request.user.has_perm("snapshots.add_snapshot")
            else None
        ),
    }


def _nway_context(comparison, result, query) -> dict:
    """What the page shows of an N-way comparison's page of rows."""
    return {
        "nway": comparison,
        "headers": [
            _column_header(column, counts) for column, counts in zip(comparison.columns, result.counts, strict=True)
        ],
        "nway_rows": [_nway_row(row) for row in result.rows],
        "colspan": 2 + 2 * len(comparison.columns),
        "table_colspan": 1 + 2 * len(comparison.columns),  # an NTTable's columns side by side, under its row
        "name_url": with_query(query, sort="name" if comparison.descending else "-name", page=None),
        "live_url": reverse("pvs:live"),
    }


def _csv_response(comparison, nway: bool) -> HttpResponse:
    """Every row of `comparison` (two-way, or N-way) as a CSV attachment."""
    stream = io.StringIO()
    if nway:
        write_nway_csv(comparison, stream)
        names = "-".join(LIVE if column is None else str(column.pk) for column in comparison.columns)
        filename = f"compare-{comparison.reference.pk}-{names}.csv"
    else:
        write_csv(comparison, stream)
        filename = f"compare-{comparison.a.pk}-{LIVE if comparison.live else comparison.b.pk}.csv"
    response = HttpResponse(stream.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _column_header(column, counts: dict) -> dict:
    differing = sum(n for status, n in counts.items() if status not in MATCHING)
    return {"snapshot": column, "differing": differing, "counts": counts}


def _side_cell(side) -> dict:
    """A value cell of the N-way table: the value, its readback, the alarm class."""
    readback = side.readback if side is not None else None
    return {
        "text": side.display if side is not None else "",
        "readback": readback.display if readback is not None else "",
        "alarm": alarm_class(side),
    }


def _nway_row(row) -> dict:
    """An NWayRow and what its table row needs; the live column's cells carry live.js's marks
    (data-live-address on the value and readback, data-live-delta), the row A's value as
    data-saved when there is one to compare with, as the two-way page's rows."""
    cells, saved = [], ""
    for cell in row.cells:
        address = cell.b.address if cell.b is not None else ""  # only a live side has one
        readback = cell.b.readback if address else None
        marked = bool(address) and row.reference is not None and row.reference.value is not None
        saved = saved or (saved_json(row.reference) if marked else "")
        cells.append(
            {
                **_side_cell(cell.b),
                "status": cell.status or "",
                "status_label": cell.status_label if cell.status else "",
                "badge": STATUS_BADGES.get(cell.status, ""),
                "highlighted": cell.status in HIGHLIGHTED,
                "delta": cell.delta_display,
                "live_address": address,
                "readback_address": readback.address if readback is not None else "",
                "live_marked": marked,
            }
        )
    row_class = " ".join(name for name in ("differs" if row.differs else "", ALARM_CLASSES.get(row.severity)) if name)
    statuses = " ".join(status or "absent" for status in row.statuses)  # absent: in neither A nor the column
    return {
        "row": row,
        "reference": _side_cell(row.reference),
        "cells": cells,
        "row_class": row_class,
        "statuses": statuses,
        "saved_json": saved,
    }


def _row(row, live: bool) -> dict:
    """A ComparisonRow and what its table row needs: badge, highlight, live.js marks."""
    severity_alarm = ALARM_CLASSES.get(row.severity, "")
    marked = live and row.a is not None and row.a.value is not None and row.b is not None and bool(row.b.address)
    return {
        "row": row,
        "text": dict(zip(CSV_HEADER, csv_cells(row, full=False), strict=False)),
        "badge": STATUS_BADGES[row.status],
        "highlighted": row.status in HIGHLIGHTED,
        # The row's alarm as the other tables show it: a stripe, and the severity in its colour
        # (nothing for NO_ALARM).
        "row_class": " ".join(
            name for name in ("out-of-tolerance" if row.status in HIGHLIGHTED else "", severity_alarm) if name
        ),
        "severity_alarm": severity_alarm,
        "live_address": row.b.address if live and row.b is not None else "",
        "saved_json": saved_json(row.a) if marked else "",
        "a": _side_cell(row.a),
        "b": _side_cell(row.b),
        "b_readback_address": row.b.readback.address if live and row.b is not None and row.b.readback else "",
        # The History control's saved value and readback: A's (static/squirrel/history.js).
        "history_saved": saved_json(row.a) if row.a is not None and row.a.value is not None else "",
        "history_readback": row.a is not None and row.a.readback is not None,
    }


class CompareArchiveView(PermissionRequiredMixin, View):
    """Compare with the archive at a time (snapshots.comparison.archive): the form (also on the
    compare page), and on POST the snapshot job from the archive, whose page opens the comparison
    once it is taken. Errors (a bad or future time, no archiver) show the form again, as a 400."""

    permission_required = ("snapshots.view_snapshot", "snapshots.add_snapshot")

    def get(self, request):
        form = ArchiveComparisonForm(initial={"a": request.GET.get("a")})
        return self.render(request, form)

    def post(self, request):
        form = ArchiveComparisonForm(request.POST)
        if not form.is_valid():
            return self.render(request, form, status=400)
        data = form.cleaned_data
        try:
            job = request_archive_comparison(
                data["a"], data["at"], data["against"], user=request.user, via=AuditVia.PAGE
            )
        except ArchiveComparisonError as exc:  # the registry changed since the form was checked
            form.add_error("at", str(exc))
            return self.render(request, form, status=400)
        return redirect("jobs:detail", job.pk)

    def render(self, request, form, status=200):
        snapshot = form.cleaned_data.get("a") if form.is_bound and hasattr(form, "cleaned_data") else None
        context = {"form": form, "snapshot": snapshot, "archived": bool(archivers())}
        return TemplateResponse(request, "snapshots/compare_archive.html", context, status=status)


class DriftView(PermissionRequiredMixin, View):
    """Live values against a snapshot (the newest golden one by default), per tag group and tag."""

    permission_required = "snapshots.view_snapshot"

    def get(self, request):
        form = DriftForm(request.GET)
        context = {"form": form, "snapshots": snapshot_choices(), "golden": golden_snapshot()}
        if not form.is_valid():
            context["errors"] = field_errors(form)
            return TemplateResponse(request, "snapshots/drift.html", context, status=400 if request.GET else 200)
        snapshot = form.cleaned_data["snapshot"]
        context["snapshots"] = snapshot_choices(snapshot)
        try:
            summary = drift_summary(snapshot)
        except redis.RedisError:
            context["unavailable"] = LIVE_UNAVAILABLE
            return TemplateResponse(request, "snapshots/drift.html", context, status=503)
        context.update({"snapshot": snapshot, "summary": summary, "lines": _drift_lines(summary)})
        return TemplateResponse(request, "snapshots/drift.html", context)


def _drift_lines(summary) -> list[dict]:
    """The drift table: totals, then each group followed by its tags, with links to the compare
    page showing that line's rows (all of them, or those of one status)."""
    base = {"a": summary.snapshot.pk, "b": LIVE}
    compare_url = reverse("snapshots:compare")

    def line(kind: str, drift, **selection) -> dict:
        def url(**status) -> str:
            return f"{compare_url}?{urlencode({**base, **selection, **status})}"

        urls = {"all": url()} | {status: url(status=status) for status in LINKED_STATUSES}
        return {"kind": kind, "line": drift, "urls": urls}

    lines = [line("total", summary.totals)]
    for group in summary.groups:
        lines.append(line("group", group, tag_group=group.id))
        lines += [line("tag", tag, tag=tag.id) for tag in group.tags]
    return lines
