"""PV API views: the registry, one PV at a time or up to API_MAX_ITEMS at once."""

from drf_spectacular.utils import extend_schema, extend_schema_view, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from pvs import services
from pvs.api.history import HistoryQuerySerializer, HistorySerializer, history_of
from pvs.api.serializers import PVChangeSerializer, PVIdsSerializer, PVSerializer
from pvs.filtersets import PVFilterSet
from pvs.models import PV
from squirrel_site.audit import via_api
from squirrel_site.bulk_sql import in_array
from squirrel_site.paginators import IdCursorPagination
from squirrel_site.permissions import ModelPermissions, needs
from squirrel_site.schema import envelope_response
from tags.api.conflicts import REGISTRY_CHANGED, RegistryConflictMixin, conflicting_writes

# The bulk endpoints' answers, for the OpenAPI schema.
_BULK_CREATED = inline_serializer(
    "PVBulkCreated",
    {"created": serializers.IntegerField(), "ids": serializers.ListField(child=serializers.IntegerField())},
)
_BULK_UPDATED = inline_serializer(
    "PVBulkUpdated", {"updated": serializers.IntegerField(), "unchanged": serializers.IntegerField()}
)
_BULK_DELETED = inline_serializer("PVBulkDeleted", {"deleted": serializers.IntegerField()})
_NO_ARCHIVER = envelope_response(
    "No archiver is configured (SQUIRREL_ARCHIVER_URL), or it did not answer; try again after `Retry-After`."
)


class PVPagination(IdCursorPagination):
    """Pages of PVs by id: no COUNT, stable while PVs are added, edited or deleted."""

    ordering = "id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


@extend_schema_view(**conflicting_writes(PVSerializer))
class PVViewSet(RegistryConflictMixin, viewsets.ModelViewSet):
    """The PV registry: list (PVFilterSet filters), read, create, change, delete, and the bulk
    endpoints, all or nothing. Every change goes through pvs.services, which audits it."""

    queryset = PV.objects.with_tags()
    serializer_class = PVSerializer
    permission_classes = [ModelPermissions]
    filterset_class = PVFilterSet
    pagination_class = PVPagination

    def perform_create(self, serializer):
        [pv_id] = services.create_pvs([serializer.validated_data], **via_api(self.request))
        serializer.instance = self.get_queryset().get(pk=pv_id)

    def perform_update(self, serializer):
        pv_id = serializer.instance.pk
        services.update_pvs({pv_id: serializer.validated_data}, **via_api(self.request))
        serializer.instance = self.get_queryset().get(pk=pv_id)

    def perform_destroy(self, pv):
        services.delete_pvs(PV.objects.filter(pk=pv.pk), **via_api(self.request))

    @extend_schema(request=PVSerializer(many=True), responses={201: _BULK_CREATED, 409: REGISTRY_CHANGED})
    @action(detail=False, methods=["post"], url_path="bulk", filterset_class=None, pagination_class=None)
    def bulk_create(self, request):
        """Create PVs from a JSON array of PV objects; 201 with their ids in the same order."""
        items = PVSerializer(data=request.data, many=True)
        items.is_valid(raise_exception=True)
        ids = services.create_pvs(items.validated_data, **via_api(self.request))
        return Response({"created": len(ids), "ids": ids}, status=status.HTTP_201_CREATED)

    @extend_schema(request=PVChangeSerializer(many=True), responses={200: _BULK_UPDATED, 409: REGISTRY_CHANGED})
    @bulk_create.mapping.patch
    def bulk_update(self, request):
        """Change PVs from a JSON array of objects with `id` and the fields to change."""
        items = PVChangeSerializer(data=request.data, many=True)
        items.is_valid(raise_exception=True)
        changes = {item.pop("id"): item for item in items.validated_data}
        updated = services.update_pvs(changes, **via_api(self.request))
        return Response({"updated": updated, "unchanged": len(changes) - updated})

    @extend_schema(request=PVIdsSerializer, responses={200: _BULK_DELETED})
    # Permissions are checked before the method: without `read`, a GET would be 403, not 405.
    @action(
        detail=False,
        methods=["post"],
        url_path="bulk-delete",
        filterset_class=None,
        pagination_class=None,
        permission_classes=[needs(read="pvs.view_pv", write="pvs.delete_pv")],
    )
    def bulk_delete(self, request):
        """Delete the PVs whose ids are given as {"ids": [...]}."""
        params = PVIdsSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        pvs = PV.objects.filter(id__in=in_array(params.validated_data["ids"], "bigint"))
        deleted = services.delete_pvs(pvs, **via_api(self.request))
        return Response({"deleted": deleted})

    @extend_schema(
        parameters=[HistoryQuerySerializer],
        responses={200: HistorySerializer, 503: _NO_ARCHIVER},
    )
    @action(detail=True, methods=["get"], url_path="history", filterset_class=None, pagination_class=None)
    def history(self, request, pk=None):
        """The PV's archived history over a window (`from`, `to`: ISO 8601, the last hour by
        default, at most 31 days): its setpoint's samples, or its readback's with
        `address=readback`, from the Archiver Appliance (pvs.api.history). 404 when the address
        is not archived, 503 when no archiver is configured or it does not answer."""
        query = HistoryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(history_of(self.get_object(), query.validated_data))
