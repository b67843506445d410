"""The PV set API: saved PV selections, created, read, changed and deleted through pvs.pv_sets
(which audits each change), their explicit lists changed in bulk, and the PVs a set resolves to."""

from django.conf import settings
from django.db.models import Count
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from pvs import pv_sets
from pvs.api.serializers import PVSerializer
from pvs.filtersets import InvalidPVSet
from pvs.models import PVSet
from pvs.protocols import CHOICES
from pvs.pv_sets import PVSetError
from pvs.selections import pv_set_filters_problems, pv_set_pvs
from squirrel_site.audit import via_api
from squirrel_site.limits import CappedListField, ModelSerializer, SentLengthCharField
from squirrel_site.paginators import IdCursorPagination
from squirrel_site.permissions import ModelPermissions, needs


def _addresses_field(help_text: str, **kwargs) -> CappedListField:
    return CappedListField(
        child=SentLengthCharField(max_length=100), max_length=settings.API_MAX_ITEMS, help_text=help_text, **kwargs
    )


class PVSetFiltersSerializer(serializers.Serializer):
    """A set's filters, as the PV lists take them (pvs.filtersets.PVFilterSet); unknown ones are refused."""

    tag = CappedListField(
        child=serializers.IntegerField(), max_length=1000, required=False, help_text="Tag ids (PVs with all of them)."
    )
    tag_group = serializers.IntegerField(required=False, help_text="Tag group id (PVs with any tag of the group).")
    device = SentLengthCharField(max_length=100, required=False, help_text="Device prefix.")
    search = SentLengthCharField(max_length=100, required=False, help_text="Text in addresses, device or description.")
    read_only = serializers.BooleanField(required=False, help_text="Only read-only (true) or writable (false) PVs.")
    protocol = serializers.ChoiceField(
        choices=CHOICES, required=False, help_text="Only PVs with an address on this protocol: ca or pva."
    )

    def to_internal_value(self, data):
        unknown = set(data) - set(self.fields) if isinstance(data, dict) else set()
        if unknown:
            raise ValidationError(f"Unknown filters: {', '.join(sorted(map(str, unknown)))}.")
        # An empty tag list or text selects nothing in particular: not kept.
        filters = {name: value for name, value in super().to_internal_value(data).items() if value not in ([], "")}
        problems = pv_set_filters_problems(filters)
        if problems:
            raise ValidationError(problems)
        return filters


class MemberAddressesField(CappedListField):
    """A set's explicit list: setpoint addresses in, setpoint addresses out (sorted); validated
    into PV ids with one query whatever their number."""

    def get_attribute(self, pv_set):
        return pv_set

    def to_representation(self, pv_set):
        return pv_sets.member_addresses(pv_set)

    def to_internal_value(self, data):
        addresses = super().to_internal_value(data)
        try:
            return pv_sets.pv_ids(pv_sets.checked_addresses(addresses))
        except PVSetError as exc:
            raise ValidationError(str(exc)) from None


class PVSetSummarySerializer(ModelSerializer):
    """A PV set in a list: without its explicit list, which may hold the whole registry."""

    filters = PVSetFiltersSerializer(required=False, default=dict)
    listed_count = serializers.SerializerMethodField(help_text="How many PVs the set lists explicitly.")
    created_by = serializers.SerializerMethodField(help_text="Who created the set (null once that user is deleted).")

    class Meta:
        model = PVSet
        fields = ["id", "name", "description", "filters", "listed_count", "created_by", "created_at", "updated_at"]
        read_only_fields = ["created_by", "created_at", "updated_at"]

    def get_created_by(self, pv_set) -> str | None:
        return pv_set.created_by.get_username() if pv_set.created_by_id else None

    def get_listed_count(self, pv_set) -> int:
        listed = getattr(pv_set, "listed", None)
        return listed if listed is not None else pv_set.pvs.count()


class PVSetSerializer(PVSetSummarySerializer):
    """A PV set: `filters` select PVs, `pvs` (setpoint addresses) are in it whatever the filters."""

    pvs = MemberAddressesField(
        child=SentLengthCharField(max_length=100),
        max_length=settings.API_MAX_ITEMS,
        required=False,
        help_text="Setpoint addresses of the PVs listed explicitly (a write replaces the list).",
    )

    class Meta(PVSetSummarySerializer.Meta):
        fields = [*PVSetSummarySerializer.Meta.fields[:4], "pvs", *PVSetSummarySerializer.Meta.fields[4:]]

    def validate(self, data):
        filters = data.get("filters", self.instance.filters if self.instance else {})
        listed = data["pvs"] if "pvs" in data else (self.instance is not None and self.instance.pvs.exists())
        if not filters and not listed:
            raise ValidationError("Give filters, PVs, or both: this set would select no PV.")
        return data


class PVSetMembersSerializer(serializers.Serializer):
    """PVs to add to and remove from a set's explicit list (a PV in both is removed)."""

    add = _addresses_field("Setpoint addresses to add.", required=False, default=list)
    remove = _addresses_field("Setpoint addresses to remove.", required=False, default=list)

    def validate(self, data):
        try:
            return {key: pv_sets.pv_ids(pv_sets.checked_addresses(data[key])) for key in ("add", "remove")}
        except PVSetError as exc:
            raise ValidationError(str(exc)) from None


_MEMBERS_CHANGED = inline_serializer(
    "PVSetMembersChanged", {"added": serializers.IntegerField(), "removed": serializers.IntegerField()}
)


class PVSetPagination(IdCursorPagination):
    ordering = "id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class PVSetViewSet(viewsets.ModelViewSet):
    """Saved PV sets. A list leaves out each set's `pvs` (a set may list the whole registry): read one
    set for them, or its resolved PVs at `pvs/`."""

    queryset = PVSet.objects.select_related("created_by").order_by("id")
    serializer_class = PVSetSerializer
    permission_classes = [ModelPermissions]
    pagination_class = PVSetPagination
    filterset_class = None

    def get_serializer_class(self):
        return PVSetSummarySerializer if self.action == "list" else PVSetSerializer

    def get_queryset(self):
        return super().get_queryset().annotate(listed=Count("pvs"))

    def _save(self, serializer, pv_set: PVSet):
        data = serializer.validated_data
        changed = [
            name for name in ("name", "description", "filters") if name in data and data[name] != getattr(pv_set, name)
        ]
        for name in ("name", "description", "filters"):
            if name in data:
                setattr(pv_set, name, data[name])
        try:
            pv_sets.save_pv_set(pv_set, member_ids=data.get("pvs"), changed=changed, **via_api(self.request))
        except PVSetError as exc:
            raise ValidationError({"name": [str(exc)]} if "exists already" in str(exc) else str(exc)) from None
        serializer.instance = self.get_queryset().get(pk=pv_set.pk)

    def perform_create(self, serializer):
        self._save(serializer, PVSet())

    def perform_update(self, serializer):
        self._save(serializer, serializer.instance)

    def perform_destroy(self, pv_set):
        try:
            pv_sets.delete_pv_set(pv_set, **via_api(self.request))
        except PVSetError as exc:
            raise ValidationError(str(exc)) from None

    @extend_schema(request=PVSetMembersSerializer, responses={200: _MEMBERS_CHANGED})
    @action(
        detail=True,
        methods=["post"],
        url_path="members",
        permission_classes=[needs(read="pvs.view_pvset", write="pvs.change_pvset")],
    )
    def members(self, request, pk=None):
        """Add PVs to and remove PVs from the set's explicit list, by setpoint address, in one request."""
        pv_set = self.get_object()
        params = PVSetMembersSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        counts = pv_sets.change_members(pv_set, **params.validated_data, **via_api(request))
        return Response(counts, status=status.HTTP_200_OK)

    @extend_schema(responses={200: PVSerializer(many=True)})
    @action(detail=True, methods=["get"], url_path="pvs", pagination_class=PVSetPagination)
    def pvs(self, request, pk=None):
        """The PVs of the set: its explicit list and what its filters select, by id, a page at a time."""
        pv_set = self.get_object()
        try:
            pvs = pv_set_pvs(pv_set).with_tags()
        except InvalidPVSet as exc:
            raise ValidationError(str(exc)) from None
        page = self.paginate_queryset(pvs)
        return self.get_paginated_response(PVSerializer(page, many=True).data)
