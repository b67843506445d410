"""Changes to tag groups and tags, shared by the API and the admin; each records one audit entry.

The functions take a Tag or a TagGroup (or a queryset of either): both are the registry's
vocabulary, audited under the same `tags.*` actions, the entry's target telling them apart.
"""

from django.db import transaction
from django.dispatch import Signal

from squirrel_site import audit
from squirrel_site.audit import AuditAction
from tags.models import Tag, TagGroup
from tags.registry import RegistryChanged, registry_write

# A deletion's audit entry names at most this many tags or groups.
AUDIT_NAMES = 100

# Sent by `delete` inside its transaction, before anything goes, with `tags`: a queryset of the
# tags about to be deleted. What is tagged reacts to it (pvs: the PVs losing them move their
# updated_at); tags know nothing tagged, so they sit below it.
tags_deleting = Signal()


def _label(item: Tag | TagGroup) -> str:
    return f"tag {item}" if isinstance(item, Tag) else f"tag group {item}"


def _editable_fields(model) -> list[str]:
    return [field.attname for field in model._meta.concrete_fields if field.editable and not field.primary_key]


def create(item: Tag | TagGroup, *, actor, via: str) -> None:
    """Save a new, validated tag or tag group and record it. RegistryChanged: a name taken or a
    group deleted since validation."""
    with registry_write():
        item.save()
        audit.record(actor, AuditAction.TAGS_CREATED, f"Created {_label(item)}", via=via, target=item)


def update(item: Tag | TagGroup, *, actor, via: str) -> dict[str, list]:
    """Save the validated edits made to `item` and record each changed field as [old, new].
    Returns the changes; nothing is saved or recorded when there are none. RegistryChanged: a
    name taken, or the item or a group deleted, since validation."""
    model = type(item)
    names = _editable_fields(model)
    with registry_write():
        before = model.objects.select_for_update().values(*names).filter(pk=item.pk).first()
        if before is None:
            raise RegistryChanged(f"The {_label(item)} was deleted meanwhile; nothing was stored.")
        changes = audit.field_changes(before, {name: getattr(item, name) for name in names})
        if changes:
            item.save(update_fields=[*changes, "updated_at"])
            audit.record(
                actor,
                AuditAction.TAGS_CHANGED,
                f"Changed {_label(item)}",
                via=via,
                target=item,
                details={"changes": changes},
            )
    return changes


@transaction.atomic
def delete(items, *, actor, via: str) -> dict[str, int]:
    """Delete the tags or tag groups of the queryset `items`. A group takes its tags with it, and
    PVs lose those tags (their updated_at moves, as with any tag change: `tags_deleting`). Returns
    how many tag groups, tags and PV-tag links went."""
    model = items.model
    doomed = list(items.select_related("group") if model is Tag else items)
    if not doomed:
        return {"tag_groups": 0, "tags": 0, "pv_links": 0}
    ids = [item.pk for item in doomed]
    tags = Tag.objects.filter(pk__in=ids) if model is Tag else Tag.objects.filter(group__in=ids)
    tags_deleting.send(Tag, tags=tags)
    _, deleted = model.objects.filter(pk__in=ids).delete()
    counts = {
        "tag_groups": deleted.get(TagGroup._meta.label, 0),
        "tags": deleted.get(Tag._meta.label, 0),
        "pv_links": deleted.get(Tag.pvs.through._meta.label, 0),  # PV.tags' links, through the reverse relation
    }
    names = [str(item) for item in doomed]
    if len(doomed) == 1:
        summary = f"Deleted {_label(doomed[0])}"
    else:
        summary = f"Deleted {len(doomed)} {model._meta.verbose_name_plural}"
    audit.record(
        actor,
        AuditAction.TAGS_DELETED,
        summary,
        via=via,
        target=doomed[0] if len(doomed) == 1 else None,
        details={**counts, "names": names[:AUDIT_NAMES]},
    )
    return counts
