"""Restore API: preview (from the monitor's cache, else a job), execute (a job), follow, undo.

The web process never talks Channel Access (README, "Processes"): a preview it cannot make from a fresh
monitor cache is made by a worker, and the answer is 202 with that job (its result_id is the
preview's id) instead of 201 with the preview.
"""

from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from jobs.api.serializers import JobSerializer
from jobs.models import Job, JobType
from jobs.outbox import enqueue
from pvs.selections import select_pvs
from snapshots.capture.api.views import ValuePagination
from snapshots.restore.actions import request_restore, request_undo
from snapshots.restore.api.serializers import (
    CreatePreviewSerializer,
    ExecuteSerializer,
    RestoreItemSerializer,
    RestorePreviewItemSerializer,
    RestorePreviewSerializer,
    RestoreSerializer,
)
from snapshots.restore.errors import NeedsChannelAccess, RestoreError
from snapshots.restore.models import Restore, RestoreAction, RestoreItemStatus, RestorePreview
from snapshots.restore.preview import preview_restore
from squirrel_site.audit import AuditVia
from squirrel_site.paginators import IdCursorPagination
from squirrel_site.permissions import needs
from squirrel_site.schema import JOB_QUEUE_UNAVAILABLE, envelope_response

# Previews, executions and undos write to the machine: they need snapshots.add_restore.
RESTORE_PERMISSION = "snapshots.add_restore"


class NewestFirst(IdCursorPagination):
    ordering = "-id"
    page_size = 50


def _items_page(view, items, serializer_class, filter_field: str):
    """One cursor page of items, optionally only those whose `filter_field` is the query's value."""
    wanted = view.request.query_params.get(filter_field)
    if wanted:
        choices = items.model._meta.get_field(filter_field).choices
        if wanted not in {value for value, _ in choices}:
            raise ValidationError({filter_field: [f"Choose one of {', '.join(value for value, _ in choices)}."]})
        items = items.filter(**{filter_field: wanted})
    page = view.paginate_queryset(items)
    return view.get_paginated_response(serializer_class(page, many=True).data)


class RestorePreviewViewSet(mixins.CreateModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """POST makes a preview (what a restore would write); execute confirms it as a job."""

    queryset = RestorePreview.objects.select_related("created_by", "restore")
    serializer_class = RestorePreviewSerializer
    permission_classes = [needs(read="snapshots.view_restorepreview", write=RESTORE_PERMISSION)]
    pagination_class = ValuePagination
    filterset_class = None

    @extend_schema(
        request=CreatePreviewSerializer,
        responses={201: RestorePreviewSerializer, 202: JobSerializer, 503: JOB_QUEUE_UNAVAILABLE},
        description="A preview of what restoring the snapshot would write: 201 with it when the monitor's "
        "cache can serve every live value, else 202 with the job that makes it (its result_id is the preview).",
    )
    def create(self, request):
        params = CreatePreviewSerializer(data=request.data, context={"request": request})
        params.is_valid(raise_exception=True)
        data = params.validated_data
        pvs = select_pvs(data["selection"]) if data["selection"] else None
        try:
            preview = preview_restore(
                data["snapshot"],
                created_by=request.user,
                pvs=pvs,
                include_unchanged=data["include_unchanged"],
                cache_only=True,
            )
        except NeedsChannelAccess:
            job_data = {
                "snapshot": data["snapshot"].pk,
                "selection": data["selection"] or None,
                "include_unchanged": data["include_unchanged"],
            }
            return _preview_job(request, job_data)
        return Response(RestorePreviewSerializer(preview).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[OpenApiParameter("action", str, enum=RestoreAction.values, description="Only these items.")],
        responses=RestorePreviewItemSerializer(many=True),
    )
    @action(detail=True, methods=["get"])
    def items(self, request, pk=None):
        """The preview's PVs (`?action=write` for those it would write)."""
        return _items_page(self, self.get_object().items.all(), RestorePreviewItemSerializer, "action")

    @extend_schema(request=ExecuteSerializer, responses={202: JobSerializer, 503: JOB_QUEUE_UNAVAILABLE})
    @action(detail=True, methods=["post"], pagination_class=None)
    def execute(self, request, pk=None):
        """Confirm the preview: the restore runs as a job (202 with the job)."""
        preview = self.get_object()
        params = ExecuteSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        try:
            job = request_restore(preview, user=request.user, via=AuditVia.API, **params.validated_data)
        except RestoreError as exc:
            raise ValidationError({"preview": [str(exc)]}) from None
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class RestoreViewSet(viewsets.ReadOnlyModelViewSet):
    """Executed restores, newest first, with their per-PV results and an undo."""

    queryset = Restore.objects.select_related("created_by")
    serializer_class = RestoreSerializer
    permission_classes = [needs(read="snapshots.view_restore", write=RESTORE_PERMISSION)]
    pagination_class = NewestFirst
    filterset_class = None

    @extend_schema(
        parameters=[OpenApiParameter("status", str, enum=RestoreItemStatus.values, description="Only these items.")],
        responses=RestoreItemSerializer(many=True),
    )
    @action(detail=True, methods=["get"], pagination_class=ValuePagination)
    def items(self, request, pk=None):
        """Per-PV results (`?status=mismatch` to see only those)."""
        return _items_page(self, self.get_object().items.all(), RestoreItemSerializer, "status")

    @extend_schema(
        request=None,
        responses={
            201: RestorePreviewSerializer,
            202: JobSerializer,
            400: envelope_response("This restore cannot be undone: it never started writing."),
            503: JOB_QUEUE_UNAVAILABLE,
        },
    )
    @action(detail=True, methods=["post"], pagination_class=None)
    def undo(self, request, pk=None):
        """A preview that puts back what this restore changed; execute it to undo."""
        try:
            result = request_undo(self.get_object(), user=request.user, via=AuditVia.API)
        except RestoreError as exc:
            raise ValidationError({"restore": str(exc)}) from None
        if isinstance(result, Job):
            return Response(JobSerializer(result).data, status=status.HTTP_202_ACCEPTED)
        return Response(RestorePreviewSerializer(result).data, status=status.HTTP_201_CREATED)


def _preview_job(request, data: dict) -> Response:
    """202 with the job that makes the preview in a worker."""
    with transaction.atomic():
        job = enqueue(JobType.PREVIEW, user=request.user, data=data)
    return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
