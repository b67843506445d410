"""Snapshot API: list, detail, take (a job), values, tags, export and import."""

import io

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from jobs.api.serializers import JobSerializer
from snapshots.capture.actions import edit_snapshot, import_snapshot_file, request_snapshot
from snapshots.capture.api.serializers import (
    SnapshotImportSerializer,
    SnapshotSerializer,
    SnapshotTagsSerializer,
    SnapshotValueSerializer,
    TakeSnapshotSerializer,
)
from snapshots.capture.api.value_rows import api_rows
from snapshots.capture.filtersets import SnapshotFilterSet
from snapshots.capture.models import Snapshot
from snapshots.capture.services import SnapshotError
from squirrel_site.audit import AuditVia
from squirrel_site.paginators import IdCursorPagination
from squirrel_site.permissions import ModelPermissions
from squirrel_site.renderers import FastJSONRenderer
from squirrel_site.schema import JOB_QUEUE_UNAVAILABLE


class SnapshotPagination(IdCursorPagination):
    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class ValuePagination(IdCursorPagination):
    """Cursor pages in id order for snapshot values and restore items, up to 50,000 per page."""

    ordering = "id"
    page_size = 1000
    page_size_query_param = "page_size"
    max_page_size = 50_000


class FormatParameterNegotiation(BaseContentNegotiation):
    """The export answers in the format `?format=` names, whatever Accept says (errors in JSON)."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


EXPORT_FORMATS = {"json": "application/json", "csv": "text/csv", "sav": "text/plain"}


class SnapshotViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Snapshots, newest first. POST takes a new one as a job (202 with the job).

    Reading needs view_snapshot; taking and importing add_snapshot, retagging change_snapshot.
    """

    queryset = Snapshot.objects.for_list()
    serializer_class = SnapshotSerializer
    permission_classes = [ModelPermissions]
    filterset_class = SnapshotFilterSet
    pagination_class = SnapshotPagination

    @extend_schema(request=TakeSnapshotSerializer, responses={202: JobSerializer, 503: JOB_QUEUE_UNAVAILABLE})
    def create(self, request):
        """Take a snapshot: a job (202 with the job; its result_id is the snapshot)."""
        params = TakeSnapshotSerializer(data=request.data, context={"request": request})
        params.is_valid(raise_exception=True)
        job = request_snapshot(user=request.user, via=AuditVia.API, params=params.job_data())
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=SnapshotValueSerializer(many=True))
    @action(
        detail=True,
        methods=["get"],
        pagination_class=ValuePagination,
        filterset_class=None,
        renderer_classes=[FastJSONRenderer],
    )
    def values(self, request, pk=None):
        """The snapshot's values in id order, up to 50,000 per page (`page_size`).

        Rows come from snapshots.capture.api.value_rows, not from SnapshotValueSerializer, which
        describes them, and ujson writes them: 50,000 through the serializer and json took 4.7 s.
        """
        snapshot = self.get_object()
        return self.get_paginated_response(self.paginate_queryset(api_rows(snapshot.values.all())))

    @extend_schema(request=SnapshotTagsSerializer, responses=SnapshotSerializer)
    @action(detail=True, methods=["put"], filterset_class=None)
    def tags(self, request, pk=None):
        """Replace the snapshot's tags (by name)."""
        snapshot = self.get_object()
        params = SnapshotTagsSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        try:
            snapshot = edit_snapshot(snapshot, user=request.user, via=AuditVia.API, tags=params.validated_data["tags"])
        except SnapshotError as exc:
            raise ValidationError({"tags": [str(exc)]}) from None
        return Response(SnapshotSerializer(snapshot).data)

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=list(EXPORT_FORMATS), default="json")],
        responses={
            (200, EXPORT_FORMATS["json"]): OpenApiResponse(OpenApiTypes.OBJECT, description="docs/snapshots.md"),
            (200, EXPORT_FORMATS["csv"]): OpenApiResponse(OpenApiTypes.STR, description="docs/snapshots.md"),
            (200, EXPORT_FORMATS["sav"]): OpenApiResponse(
                OpenApiTypes.STR, description="An autosave .sav file (docs/snapshots.md)"
            ),
        },
    )
    @action(detail=True, methods=["get"], filterset_class=None, content_negotiation_class=FormatParameterNegotiation)
    def export(self, request, pk=None):
        """The snapshot as `?format=json` (default) or `?format=csv`, re-importable without loss, or as
        an autosave file (`?format=sav`) an IOC's autosave can restore (values only)."""
        from snapshots.capture.exporters import export_snapshot_csv, export_snapshot_json
        from snapshots.capture.save_files import export_snapshot_sav

        snapshot = self.get_object()
        fmt = request.query_params.get("format") or "json"
        exporters = {"json": export_snapshot_json, "csv": export_snapshot_csv, "sav": export_snapshot_sav}
        if fmt not in exporters:
            raise ValidationError({"format": "Use json, csv or sav."})
        exporter, content_type = exporters[fmt], EXPORT_FORMATS[fmt]
        stream = io.StringIO()
        exporter(snapshot, stream)
        response = HttpResponse(stream.getvalue(), content_type=f"{content_type}; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="snapshot-{snapshot.id}.{fmt}"'
        return response

    @extend_schema(
        request={
            "multipart/form-data": inline_serializer(
                "SnapshotImport", {"file": serializers.FileField(), "title": serializers.CharField(required=False)}
            )
        },
        responses={201: SnapshotImportSerializer},
    )
    @action(detail=False, methods=["post"], parser_classes=[MultiPartParser], filterset_class=None, url_path="import")
    def import_file(self, request):
        """Import a snapshot file (multipart field `file`, optional `title`): Squirrel's JSON or CSV
        export, an autosave .sav, a PSI snapshot or BURT .snap file. The answer is the snapshot and
        `unknown_pvs`, the file's names that are no registry PV (kept without a PV)."""
        from snapshots.capture.importers import SnapshotImportError

        upload = request.FILES.get("file")
        if upload is None:
            raise ValidationError({"file": "Attach the snapshot file as `file`."})
        try:
            snapshot = import_snapshot_file(
                upload.name, upload.read(), user=request.user, via=AuditVia.API, title=request.data.get("title") or None
            )
        except SnapshotImportError as exc:
            raise ValidationError({"file": [str(problem) for problem in exc.problems]}) from None
        return Response(SnapshotImportSerializer(snapshot).data, status=status.HTTP_201_CREATED)
