"""Live-value API views: values come from Redis only, never from Channel Access."""

from rest_framework import mixins, viewsets
from rest_framework.pagination import CursorPagination

from monitor.api.serializers import LivePVSerializer
from pvs.filtersets import PVFilterSet
from pvs.models import PV
from squirrel_site.permissions import ModelPermissions


class LiveValuePagination(CursorPagination):
    """Pages of registry PVs by id: no COUNT, stable while PVs are added or removed."""

    ordering = "id"
    page_size = 500
    page_size_query_param = "page_size"
    max_page_size = 5000


class LiveValueViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Live values of the selected registry PVs (setpoint and readback), one page at a time; pvs.view_pv."""

    queryset = PV.objects.only("id", "setpoint_address", "readback_address")
    permission_classes = [ModelPermissions]
    serializer_class = LivePVSerializer
    filterset_class = PVFilterSet
    pagination_class = LiveValuePagination
