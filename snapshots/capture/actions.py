"""What people ask of the archive and the machine: take, import, edit and delete snapshots,
execute a restore preview, undo a restore.

The API, the pages and the admin call these verbs (scheduled snapshots: snapshots.schedules).
Each does its work and records it in the audit log in the same transaction, so an entry exists
exactly when the change does; `user` is the actor (a token's owner or a session's user) and
`via` says where the request came from (squirrel_site.audit.AuditVia).
"""

from collections.abc import Iterable

from django.db import transaction

from jobs.models import Job, JobType
from jobs.outbox import enqueue
from snapshots.capture.importers import import_snapshot
from snapshots.capture.services import SnapshotError, protected_tags_refusal
from snapshots.models import MANAGE_PROTECTED_TAGS, Restore, RestorePreview, Snapshot, SnapshotTag
from snapshots.restore.execute import NeedsChannelAccess, RestoreError, execution_refusal, undo_restore
from squirrel_site import audit
from squirrel_site.audit import AuditAction


def request_snapshot(*, user, via: str, params: dict) -> Job:
    """Enqueue a snapshot job; `params` are its data (title, comment, mode, tags, selection)."""
    with transaction.atomic():
        job = enqueue(JobType.SNAPSHOT, user=user, data=params)
        audit.record(
            user,
            AuditAction.SNAPSHOT_REQUESTED,
            f"Snapshot “{params['title']}” requested (job #{job.pk})",
            via=via,
            target=job,
            details=params,
        )
    return job


def import_snapshot_file(filename: str, content: bytes | str, *, user, via: str, title: str | None = None) -> Snapshot:
    """Create a snapshot from an exported file (snapshots.importers.import_snapshot, whose
    SnapshotImportError lists every problem; nothing is written or recorded then)."""
    with transaction.atomic():
        snapshot = import_snapshot(filename, content, created_by=user, title=title)
        audit.record(
            user,
            AuditAction.SNAPSHOT_IMPORTED,
            f"Snapshot #{snapshot.pk} “{snapshot.title}” imported from {filename}",
            via=via,
            target=snapshot,
            details={"file": filename, "pv_count": snapshot.pv_count},
        )
    return snapshot


def edit_snapshot(
    snapshot: Snapshot,
    *,
    user,
    via: str,
    title: str | None = None,
    comment: str | None = None,
    tags: Iterable[SnapshotTag] | None = None,
) -> Snapshot:
    """Change a snapshot's title, comment or tags (None: unchanged); recorded only if something
    changed. SnapshotError if the change adds or removes a protected tag the user may not manage."""
    with transaction.atomic():
        snapshot = Snapshot.objects.select_for_update().get(pk=snapshot.pk)
        changes: dict = {}
        for field, value in (("title", title), ("comment", comment)):
            if value is not None and value != getattr(snapshot, field):
                changes[field] = [getattr(snapshot, field), value]
                setattr(snapshot, field, value)
        if tags is not None:
            before, after = list(snapshot.tags.all()), list(tags)
            refusal = protected_tags_refusal(user, before, after)
            if refusal:
                raise SnapshotError(refusal)
            added = sorted({tag.name for tag in after} - {tag.name for tag in before})
            removed = sorted({tag.name for tag in before} - {tag.name for tag in after})
            if added or removed:
                snapshot.tags.set(after)
                changes["tags"] = {"added": added, "removed": removed}
        if not changes:
            return snapshot
        fields = [field for field in ("title", "comment") if field in changes]
        if fields:
            snapshot.save(update_fields=fields)
        audit.record(
            user,
            AuditAction.SNAPSHOT_CHANGED,
            f"Snapshot #{snapshot.pk} “{snapshot.title}”: {_describe(changes)}",
            via=via,
            target=snapshot,
            details=changes,
        )
    return snapshot


def _describe(changes: dict) -> str:
    parts = [f"{field} changed" for field in ("title", "comment") if field in changes]
    tags = changes.get("tags", {"added": [], "removed": []})
    parts += [f"tagged {name}" for name in tags["added"]] + [f"untagged {name}" for name in tags["removed"]]
    return ", ".join(parts)


def delete_snapshots(snapshots, *, user, via: str, details: dict | None = None) -> int:
    """Delete the snapshots of the queryset `snapshots`, recording each; how many were deleted.

    Snapshots carrying a protected tag (golden) are kept unless `user` may manage protected tags.
    """
    if not (user is not None and user.has_perm(MANAGE_PROTECTED_TAGS)):
        snapshots = snapshots.exclude(tags__protected=True)
    with transaction.atomic():
        doomed = list(snapshots.select_related(None).select_for_update(of=("self",)).only("pk", "title").order_by("pk"))
        for snapshot in doomed:
            audit.record(
                user,
                AuditAction.SNAPSHOT_DELETED,
                f"Snapshot #{snapshot.pk} “{snapshot.title}” deleted",
                via=via,
                target=snapshot,
                details=details,
            )
        Snapshot.objects.filter(pk__in=[snapshot.pk for snapshot in doomed]).delete()
    return len(doomed)


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
