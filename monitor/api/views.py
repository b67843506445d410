"""Live-value API views: values come from Redis only, never from Channel Access."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, viewsets

from monitor.api.serializers import LivePVSerializer
from pvs.filtersets import PVFilterSet
from pvs.models import PV
from squirrel_site.paginators import IdCursorPagination
from squirrel_site.permissions import ModelPermissions
from squirrel_site.schema import LIVE_VALUES_UNAVAILABLE


class LiveValuePagination(IdCursorPagination):
    """Pages of registry PVs by id: no COUNT, stable while PVs are added or removed."""

    ordering = "id"
    page_size = 500
    page_size_query_param = "page_size"
    max_page_size = 5000


@extend_schema_view(list=extend_schema(responses={200: LivePVSerializer(many=True), 503: LIVE_VALUES_UNAVAILABLE}))
class LiveValueViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Live values of the selected registry PVs (setpoint and readback), one page at a time; pvs.view_pv."""

    queryset = PV.objects.only("id", "setpoint_address", "readback_address")
    permission_classes = [ModelPermissions]
    serializer_class = LivePVSerializer
    filterset_class = PVFilterSet
    pagination_class = LiveValuePagination
