"""Compare and drift API: snapshot against snapshot or live values, and drift per tag."""

from urllib.parse import urlencode

import redis
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param
from rest_framework.views import APIView

from jobs.api.serializers import JobSerializer
from monitor.api.serializers import LiveValuesUnavailable
from pvs.filtersets import PVFilterSet
from snapshots.capture.api.serializers import SnapshotSerializer
from snapshots.capture.models import Snapshot
from snapshots.comparison.api.payloads import comparison_json, nway_json
from snapshots.comparison.api.serializers import ComparePageSerializer, DriftSerializer, NWayPageSerializer
from snapshots.comparison.archive import (
    AGAINST,
    SNAPSHOT,
    ArchiveComparisonError,
    archive_comparison_refusal,
    request_archive_comparison,
)
from snapshots.comparison.drift import DriftLine, drift_summary
from snapshots.comparison.forms import (
    LIVE,
    CompareForm,
    DriftForm,
    NWayForm,
    compare_parameters,
    field_errors,
    nway_parameters,
)
from snapshots.comparison.nway import compare_columns
from snapshots.comparison.rows import compare
from squirrel_site.audit import AuditVia
from squirrel_site.permissions import needs
from squirrel_site.schema import JOB_QUEUE_UNAVAILABLE, LIVE_VALUES_UNAVAILABLE, form_parameters

COUNTS = OpenApiParameter(
    "counts",
    bool,
    default=True,
    description="false skips the counts per status (against live values, a page sorted by name or device then "
    "reads only its own addresses from Redis).",
)


class CompareView(APIView):
    """Compare snapshot `a` with snapshot `b` or with live values (`b=live`), one page of rows.

    Parameters: `abs_tol` and `rel_tol` replace every PV's tolerance; `differences_only`,
    `status` (repeatable), `severity` (least, either side) and `name` filter rows; `tag`,
    `tag_group`, `device`, `search` and `pv` select registry PVs as elsewhere; `sort` is name,
    device, delta, status or severity (`-` for descending); `page` and `page_size` (up to 1000).
    `counts=false` skips the counts per status, which against live values lets a page sorted by
    name or device read only its own addresses from Redis.
    """

    permission_classes = [needs(read="snapshots.view_snapshot")]

    @extend_schema(
        parameters=[*form_parameters(CompareForm()), *form_parameters(PVFilterSet().form), COUNTS],
        responses={200: ComparePageSerializer, 503: LIVE_VALUES_UNAVAILABLE},
    )
    def get(self, request):
        form, comparison, errors = compare_parameters(request.query_params)
        with_counts = request.query_params.get("counts", "true").lower() not in ("false", "0", "no")
        if comparison is None:
            raise ValidationError(errors)
        number, size = form.page_number, form.rows_per_page
        try:
            page = compare(comparison, offset=(number - 1) * size, limit=size, with_counts=with_counts)
        except redis.RedisError as exc:
            raise LiveValuesUnavailable() from exc
        url = request.build_absolute_uri()
        more = number * size < page.total
        return Response(
            {
                "a": SnapshotSerializer(comparison.a).data,
                "b": LIVE if comparison.live else SnapshotSerializer(comparison.b).data,
                "count": page.total,
                "counts": page.counts,
                "next": replace_query_param(url, "page", number + 1) if more else None,
                "previous": _previous(url, number),
                "results": [comparison_json(row) for row in page.rows],
            }
        )


class CompareColumnsView(APIView):
    """Compare snapshot `a` (the reference) with up to 8 columns side by side, one page of rows.

    `b` is repeatable: snapshot ids, and "live" at most once (the live values alone by default).
    Each row has A's value and, per column, its value, status and delta against A (values with
    their readbacks). The filters are /compare/'s and apply to a row as a whole: `status` keeps
    rows where any column has one of the statuses, `differences_only` rows where any column
    differs, `severity` rows with that alarm severity on any side. Sorted by name (`sort=-name`
    descending); `page` and `page_size` (up to 1000).
    """

    permission_classes = [needs(read="snapshots.view_snapshot")]

    @extend_schema(
        parameters=[*form_parameters(NWayForm()), *form_parameters(PVFilterSet().form)],
        responses={200: NWayPageSerializer, 503: LIVE_VALUES_UNAVAILABLE},
    )
    def get(self, request):
        form, comparison, errors = nway_parameters(request.query_params)
        if comparison is None:
            raise ValidationError(errors)
        number, size = form.page_number, form.rows_per_page
        try:
            page = compare_columns(comparison, offset=(number - 1) * size, limit=size)
        except redis.RedisError as exc:
            raise LiveValuesUnavailable() from exc
        url = request.build_absolute_uri()
        return Response(
            {
                "a": SnapshotSerializer(comparison.reference).data,
                "columns": [
                    LIVE if column is None else SnapshotSerializer(column).data for column in comparison.columns
                ],
                "count": page.total,
                "counts": page.counts,
                "next": replace_query_param(url, "page", number + 1) if number * size < page.total else None,
                "previous": _previous(url, number),
                "results": [nway_json(row) for row in page.rows],
            }
        )


def _previous(url: str, number: int) -> str | None:
    if number <= 1:
        return None
    return remove_query_param(url, "page") if number == 2 else replace_query_param(url, "page", number - 1)


class DriftView(APIView):
    """Live values against a snapshot (`snapshot`, the newest golden one by default), counted per
    tag group and tag: PVs, out of tolerance, disconnected. Each line links to its compare rows."""

    permission_classes = [needs(read="snapshots.view_snapshot")]

    @extend_schema(
        parameters=form_parameters(DriftForm()), responses={200: DriftSerializer, 503: LIVE_VALUES_UNAVAILABLE}
    )
    def get(self, request):
        form = DriftForm(request.query_params)
        if not form.is_valid():
            raise ValidationError(field_errors(form))
        snapshot = form.cleaned_data["snapshot"]
        try:
            summary = drift_summary(snapshot)
        except redis.RedisError as exc:
            raise LiveValuesUnavailable() from exc
        compare_url = request.build_absolute_uri(reverse("snapshots-api:compare"))

        def line(drift: DriftLine, **selection) -> dict:
            query = urlencode({"a": snapshot.pk, "b": LIVE, "differences_only": "true", **selection})
            return {
                "id": drift.id,
                "name": drift.name,
                "pvs": drift.pvs,
                "out_of_tolerance": drift.out_of_tolerance,
                "disconnected": drift.disconnected,
                "type_changed": drift.type_changed,
                "counts": dict(drift.counts),
                "compare": f"{compare_url}?{query}",
            }

        return Response(
            {
                "snapshot": SnapshotSerializer(snapshot).data,
                "read_at": summary.read_at,
                "totals": {key: value for key, value in line(summary.totals).items() if key not in ("id", "name")},
                "groups": [
                    {**line(group, tag_group=group.id), "tags": [line(tag, tag=tag.id) for tag in group.tags]}
                    for group in summary.groups
                ],
            }
        )


class ArchiveComparisonSerializer(serializers.Serializer):
    """Compare snapshot `a` with the archive at `at` (`against`: snapshot), or the archive at `at`
    with live values (`against`: live)."""

    a = serializers.PrimaryKeyRelatedField(queryset=Snapshot.objects.all(), help_text="The snapshot's id.")
    at = serializers.DateTimeField(
        help_text="ISO 8601; without an offset, in the server's time zone. Each PV's last archived sample at or "
        "before it."
    )
    against = serializers.ChoiceField(choices=AGAINST, default=SNAPSHOT)

    def validate(self, data):
        refusal = archive_comparison_refusal(data["a"], data["at"])
        if refusal:
            raise ValidationError({"at": [refusal]})
        return data


class CompareArchiveView(APIView):
    """Compare with the archive at a time: starts the snapshot job from the archive at `at` for
    snapshot `a`'s registry PVs (202 with the job). Once it succeeded, the job's `compare_url`
    (GET jobs/<id>/) is the comparison: `a` against the archived snapshot, or (`against=live`)
    the archived snapshot against live values. Needs snapshots.add_snapshot."""

    permission_classes = [needs(write="snapshots.add_snapshot")]

    @extend_schema(request=ArchiveComparisonSerializer, responses={202: JobSerializer, 503: JOB_QUEUE_UNAVAILABLE})
    def post(self, request):
        params = ArchiveComparisonSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        try:
            job = request_archive_comparison(
                data["a"], data["at"], data["against"], user=request.user, via=AuditVia.API
            )
        except ArchiveComparisonError as exc:
            raise ValidationError({"at": [str(exc)]}) from None
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
