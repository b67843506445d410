"""What people ask of the archive: take, import, edit and delete snapshots (restores:
snapshots.restore.actions).

The API, the pages and the admin call these verbs (scheduled snapshots: snapshots.capture.schedules).
Each does its work and records it in the audit log in the same transaction, so an entry exists
exactly when the change does; `user` is the actor (a token's owner or a session's user) and
`via` says where the request came from (squirrel_site.audit.AuditVia).
"""

from collections.abc import Iterable

from django.db import transaction

from jobs.models import Job, JobType
from jobs.outbox import enqueue
from snapshots.capture.importers import import_snapshot
from snapshots.capture.models import MANAGE_PROTECTED_TAGS, Snapshot, SnapshotTag
from snapshots.capture.services import SnapshotError, protected_tags_refusal
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
    """Create a snapshot from an exported file (snapshots.capture.importers.import_snapshot, whose
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
