"""Tag and tag group API serializers."""

from rest_framework import serializers

from squirrel_site.limits import ModelSerializer
from tags.models import Tag, TagGroup


class TagGroupSerializer(ModelSerializer):
    """A tag group and how many tags it has; deleting it deletes its tags."""

    tag_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = TagGroup
        fields = ["id", "name", "description", "tag_count", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]


class TagSerializer(ModelSerializer):
    """A tag (its group by id, the group's name for reading) and how many PVs carry it."""

    group_name = serializers.CharField(source="group.name", read_only=True)
    pv_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Tag
        fields = ["id", "group", "group_name", "name", "description", "pv_count", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]
        # The unique name within a group is checked in validate(), so the message names `name`.
        validators: list = []

    def validate(self, attrs):
        group = attrs.get("group", getattr(self.instance, "group", None))
        name = attrs.get("name", getattr(self.instance, "name", None))
        others = Tag.objects.exclude(pk=self.instance.pk) if self.instance else Tag.objects.all()
        if others.filter(group=group, name=name).exists():
            message = f"Tag group {group.name} already has a tag named {name!r}."
            raise serializers.ValidationError({"name": [message]})
        return attrs
