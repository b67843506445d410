"""What people ask of the machine: execute a restore preview, undo a restore.

The API and the pages call these verbs. Each does its work and records it in the audit log in the
same transaction, so an entry exists exactly when the change does; `user` is the actor (a token's
owner or a session's user) and `via` says where the request came from (squirrel_site.audit.AuditVia).
"""

from django.db import transaction

from jobs.models import Job, JobType
from jobs.outbox import enqueue
from snapshots.restore.claim import execution_refusal
from snapshots.restore.errors import NeedsChannelAccess, RestoreError
from snapshots.restore.models import Restore, RestorePreview
from snapshots.restore.undo import undo_restore
from squirrel_site import audit
from squirrel_site.audit import AuditAction


def request_restore(preview: RestorePreview, *, user, via: str, verify: bool, verify_timeout: float) -> Job:
    """Confirm `preview`: enqueue the restore job. RestoreError says why it may not run now
    (expired, executed already, its PVs edited since)."""
    with transaction.atomic():
        # Locked, so two confirmations of one preview cannot both pass the check.
        preview = RestorePreview.objects.select_for_update().select_related("snapshot").get(pk=preview.pk)
        refusal = execution_refusal(preview)
        if refusal:
            raise RestoreError(refusal)
        options = {"verify": verify, "verify_timeout": verify_timeout}
        job = enqueue(JobType.RESTORE, user=user, data={"preview": preview.pk, **options})
        audit.record(
            user,
            AuditAction.RESTORE_REQUESTED,
            f"Restore of snapshot #{preview.snapshot_id} “{preview.snapshot.title}” requested: preview #{preview.pk}, "
            f"{preview.write_count} PVs to write (job #{job.pk})",
            via=via,
            target=preview,
            details={"snapshot": preview.snapshot_id, "job": job.pk, "write_count": preview.write_count, **options},
        )
    return job


def request_undo(restore: Restore, *, user, via: str) -> RestorePreview | Job:
    """A preview that puts back what `restore` changed, made from the monitor's cache, or the job
    that makes it in a worker when the cache cannot serve it. RestoreError if there is nothing to
    undo (the restore never started writing)."""
    summary = f"Undo of restore #{restore.pk} requested"
    try:
        with transaction.atomic():
            preview = undo_restore(restore, user=user, cache_only=True)
            audit.record(
                user,
                AuditAction.RESTORE_UNDO_REQUESTED,
                f"{summary}: preview #{preview.pk}",
                via=via,
                target=restore,
                details={"preview": preview.pk},
            )
        return preview
    except NeedsChannelAccess:
        with transaction.atomic():
            job = enqueue(JobType.PREVIEW, user=user, data={"undo_of": restore.pk})
            audit.record(
                user,
                AuditAction.RESTORE_UNDO_REQUESTED,
                f"{summary}: preview by job #{job.pk}",
                via=via,
                target=restore,
                details={"job": job.pk},
            )
        return job
