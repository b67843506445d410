"""Undo: a preview that puts the PVs a restore targeted back to its undo snapshot; it is confirmed
and executed like any other preview."""

from __future__ import annotations

from pvs.models import PV
from snapshots.restore.errors import RestoreError
from snapshots.restore.models import (
    Restore,
    RestorePreview,
)
from snapshots.restore.preview import DEFAULT_TTL, preview_restore


def undo_restore(
    restore: Restore, *, user, ttl: float = DEFAULT_TTL, io=None, cache_only: bool = False, job_id: int | None = None
) -> RestorePreview:
    """A preview that puts the PVs of `restore` back to its undo snapshot; execute it as usual."""
    if restore.undo_snapshot_id is None:
        raise RestoreError(f"Restore #{restore.pk} has no undo snapshot: it never started writing.")
    return preview_restore(
        restore.undo_snapshot,
        created_by=user,
        pvs=undo_pvs(restore),
        ttl=ttl,
        io=io,
        cache_only=cache_only,
        job_id=job_id,
    )


def undo_pvs(restore: Restore):
    """The PVs an undo of `restore` puts back: those it targeted."""
    return PV.objects.filter(pk__in=restore.items.exclude(pv=None).values("pv"))
