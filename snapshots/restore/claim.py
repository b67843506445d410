"""Claiming a preview for execution: whether it may run now (not expired, not executed, its PVs
unchanged in the registry), the one Restore row per preview, and the advisory lock that lets one
runner at a time execute it."""

from __future__ import annotations

from contextlib import contextmanager

from django.db import connection, transaction
from django.utils import timezone

from snapshots.restore.errors import RestoreBusy, RestoreError
from snapshots.restore.models import (
    Restore,
    RestoreAction,
    RestorePreview,
)
from snapshots.restore.preview import registry_fingerprint

# Any number would do: the first half of the two-key advisory lock, so restore ids cannot
# collide with other users of advisory locks.
_LOCK_NAMESPACE = 0x5351  # "SQ"


def execution_refusal(preview: RestorePreview, existing: Restore | None = None) -> str | None:
    """Why `preview` may not be executed now, or None. An unfinished restore of it may always
    resume (its worker died or its job failed); a finished one may not run again."""
    existing = existing or Restore.objects.filter(preview=preview).first()
    if existing is not None:
        if existing.is_finished:
            return (
                f"Preview #{preview.pk} was already executed (restore #{existing.pk}, "
                f"{existing.get_status_display().lower()}). Make a new preview to restore again."
            )
        return None
    if preview.expires_at <= timezone.now():
        return (
            f"Preview #{preview.pk} expired at {timezone.localtime(preview.expires_at):%H:%M:%S}: "
            "the machine may have changed since. Make a new preview."
        )
    return registry_changed(preview)


def registry_changed(preview: RestorePreview) -> str | None:
    """Why the registry entries of the preview's PVs no longer match it, or None."""
    pv_ids = list(preview.items.exclude(pv=None).values_list("pv_id", flat=True))
    deleted = preview.items.filter(pv=None).exclude(action=RestoreAction.SKIP_NOT_IN_REGISTRY).exists()
    if deleted or registry_fingerprint(pv_ids) != preview.registry_fingerprint:
        return (
            f"The registry entries of PVs in preview #{preview.pk} were edited or deleted since it "
            "was made (addresses, tolerances, read-only, stage). Make a new preview."
        )
    return None


def claim(preview: RestorePreview, user, job, options: dict) -> tuple[Restore, bool]:
    """(The restore of `preview`, created): created if the preview may still be executed, else
    the unfinished one."""
    with transaction.atomic():
        preview = RestorePreview.objects.select_for_update().get(pk=preview.pk)
        existing = Restore.objects.filter(preview=preview).first()
        refusal = execution_refusal(preview, existing)
        if refusal:
            raise RestoreError(refusal)
        if existing is not None:
            return existing, False
        restore = Restore.objects.create(
            preview=preview, snapshot_id=preview.snapshot_id, created_by=user, job=job, options=options
        )
        return restore, True


@contextmanager
def runner_lock(restore: Restore):
    """Hold the session-level advisory lock of `restore`, or raise RestoreBusy."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s::int, %s::int)", [_LOCK_NAMESPACE, restore.pk])
        if not cursor.fetchone()[0]:
            raise RestoreBusy(f"Restore #{restore.pk} is being executed by another worker.")
    try:
        yield
    finally:
        # Inside a broken outer transaction (only when a caller wrapped us in atomic) nothing can
        # run; the lock is session-level and reentrant, and goes when the connection closes.
        if not connection.needs_rollback:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s::int, %s::int)", [_LOCK_NAMESPACE, restore.pk])
