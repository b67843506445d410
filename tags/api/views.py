"""Tag and tag group API views: CRUD through tags.services, which audits every change."""

from drf_spectacular.utils import extend_schema, extend_schema_view, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.response import Response

from squirrel_site.audit import via_api
from squirrel_site.paginators import IdCursorPagination
from squirrel_site.permissions import ModelPermissions
from tags import services
from tags.api.conflicts import RegistryConflictMixin, conflicting_writes
from tags.api.serializers import TagGroupSerializer, TagSerializer
from tags.filtersets import TagFilterSet, TagGroupFilterSet
from tags.models import Tag, TagGroup

# What a DELETE answers, for the OpenAPI schema.
_DELETED = inline_serializer(
    "VocabularyDeleted", {name: serializers.IntegerField() for name in ("tag_groups", "tags", "pv_links")}
)


class VocabularyPagination(IdCursorPagination):
    """Pages by id; there are hundreds of tags at most, so a page usually holds them all."""

    ordering = "id"
    page_size = 500
    page_size_query_param = "page_size"
    max_page_size = 1000


class VocabularyViewSet(RegistryConflictMixin, viewsets.ModelViewSet):
    """Tags or tag groups. DELETE answers 200 with what went: {"tag_groups", "tags", "pv_links"}
    (a group takes its tags with it, and PVs lose those tags)."""

    permission_classes = [ModelPermissions]
    pagination_class = VocabularyPagination

    def perform_create(self, serializer):
        item = self.queryset.model(**serializer.validated_data)
        services.create(item, **via_api(self.request))
        serializer.instance = self.get_queryset().get(pk=item.pk)

    def perform_update(self, serializer):
        item = serializer.instance
        for name, value in serializer.validated_data.items():
            setattr(item, name, value)
        services.update(item, **via_api(self.request))
        serializer.instance = self.get_queryset().get(pk=item.pk)

    @extend_schema(responses={200: _DELETED})
    def destroy(self, request, *args, **kwargs):
        item = self.get_object()
        deleted = services.delete(self.queryset.model.objects.filter(pk=item.pk), **via_api(self.request))
        return Response(deleted)


@extend_schema_view(**conflicting_writes(TagGroupSerializer))
class TagGroupViewSet(VocabularyViewSet):
    """Tag groups with their tag counts."""

    queryset = TagGroup.objects.with_tag_counts()
    serializer_class = TagGroupSerializer
    filterset_class = TagGroupFilterSet


@extend_schema_view(**conflicting_writes(TagSerializer))
class TagViewSet(VocabularyViewSet):
    """Tags with their group and PV counts."""

    queryset = Tag.objects.with_pv_counts()
    serializer_class = TagSerializer
    filterset_class = TagFilterSet
