"""Tag groups and tags: the vocabulary operators use to select PVs (area, subsystem, ...)."""

from django.core.exceptions import ValidationError
from django.db import models


def validate_tag_name(value: str) -> None:
    """Tag and group names are single-line, trimmed, and free of ',' (it separates tags in a CSV cell)."""
    if value != value.strip():
        raise ValidationError("Remove leading or trailing spaces.")
    if "," in value or any(ord(ch) < 32 for ch in value):
        raise ValidationError("Names may not contain ',', tabs, line breaks or control characters.")


class TagGroupQuerySet(models.QuerySet):
    def with_tags(self):
        """Groups with their tags prefetched, for admin inlines and CSV export."""
        return self.prefetch_related("tags")

    def with_tag_counts(self):
        """Groups with `tag_count`, for the admin list and the API."""
        return self.annotate(tag_count=models.Count("tags"))


class TagGroup(models.Model):
    """A family of tags, one CSV column in SLAC's registry format (e.g. Area, Subsystem)."""

    name = models.CharField(max_length=100, unique=True, validators=[validate_tag_name])
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TagGroupQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TagQuerySet(models.QuerySet):
    def with_pv_counts(self):
        """Tags with their group loaded and `pv_count`, for the admin list and the API."""
        return self.select_related("group").annotate(pv_count=models.Count("pvs"))


class Tag(models.Model):
    """One value within a tag group; PVs carry any number of tags."""

    group = models.ForeignKey(TagGroup, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=100, validators=[validate_tag_name])
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TagQuerySet.as_manager()

    class Meta:
        ordering = ["group__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["group", "name"], name="tag_unique_name_in_group"),
        ]

    def __str__(self) -> str:
        return f"{self.group.name}: {self.name}"
