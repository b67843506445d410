"""Curation actions on the PV registry, shared by the admin, the API and commands.

Each takes a PV queryset so "select all 50,000" costs a few statements, not one per PV.
"""

from django.db import transaction
from django.utils import timezone

from pvs.models import PV
from pvs.validators import validate_tolerance


@transaction.atomic
def add_tags(pvs, tags) -> int:
    """Give every PV in `pvs` each of `tags`; returns how many PV-tag links were created."""
    through = PV.tags.through
    pv_ids = list(pvs.values_list("id", flat=True))
    tag_ids = [tag.id for tag in tags]
    existing = set(
        through.objects.filter(pv_id__in=pv_ids, tag_id__in=tag_ids).values_list("pv_id", "tag_id")
    )
    links = [
        through(pv_id=pv_id, tag_id=tag_id)
        for pv_id in pv_ids
        for tag_id in tag_ids
        if (pv_id, tag_id) not in existing
    ]
    through.objects.bulk_create(links, batch_size=5000, ignore_conflicts=True)
    _touch({link.pv_id for link in links})
    return len(links)


@transaction.atomic
def remove_tags(pvs, tags) -> int:
    """Take each of `tags` off every PV in `pvs`; returns how many links were removed."""
    through = PV.tags.through
    links = through.objects.filter(pv__in=pvs, tag__in=list(tags))
    pv_ids = set(links.values_list("pv_id", flat=True))
    removed, _ = links.delete()
    _touch(pv_ids)
    return removed


def set_tolerances(pvs, *, abs_tolerance: float | None = None, rel_tolerance: float | None = None) -> int:
    """Set the absolute and/or relative tolerance of every PV in `pvs`."""
    changes = {}
    if abs_tolerance is not None:
        validate_tolerance(abs_tolerance)
        changes["abs_tolerance"] = abs_tolerance
    if rel_tolerance is not None:
        validate_tolerance(rel_tolerance)
        changes["rel_tolerance"] = rel_tolerance
    if not changes:
        return 0
    return pvs.update(updated_at=timezone.now(), **changes)


def set_read_only(pvs, read_only: bool) -> int:
    """Mark every PV in `pvs` read-only (never restored) or writable."""
    return pvs.exclude(read_only=read_only).update(read_only=read_only, updated_at=timezone.now())


def _touch(pv_ids) -> None:
    if pv_ids:
        PV.objects.filter(id__in=pv_ids).update(updated_at=timezone.now())

