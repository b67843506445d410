"""Filters for the tag and tag group API."""

import django_filters
from django.db.models import Q

from tags.models import Tag, TagGroup


class TagGroupFilterSet(django_filters.FilterSet):
    """Select tag groups by exact name or by text in the name or description."""

    name = django_filters.CharFilter(label="Exact name")
    search = django_filters.CharFilter(method="filter_search", label="Text in the name or description")

    class Meta:
        model = TagGroup
        fields: list[str] = []

    def filter_search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(description__icontains=value))


class TagFilterSet(django_filters.FilterSet):
    """Select tags by group (id or name), exact name, or text in the tag's or its group's name."""

    group = django_filters.ModelMultipleChoiceFilter(queryset=TagGroup.objects.all(), label="Tag group id (repeatable)")
    group_name = django_filters.CharFilter(field_name="group__name", label="Tag group name (exact)")
    name = django_filters.CharFilter(label="Exact tag name")
    search = django_filters.CharFilter(method="filter_search", label="Text in the tag's or its group's name")

    class Meta:
        model = Tag
        fields: list[str] = []

    def filter_search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(group__name__icontains=value))
