"""Recording audit entries: the one writer of squirrel_site.models.AuditEntry.

Services call `record` inside the transaction that makes the change, so an entry exists exactly
when the change does.
"""

from squirrel_site.models import AuditEntry, AuditVia

__all__ = ["AuditAction", "AuditVia", "field_changes", "record", "via_api"]


class AuditAction:
    """The action names the audit log uses (a dotted noun.verb, filterable in the admin)."""

    PVS_CREATED = "pvs.created"
    PVS_CHANGED = "pvs.changed"
    PVS_DELETED = "pvs.deleted"
    PVS_IMPORTED = "pvs.imported"
    PV_SET_CREATED = "pv_set.created"
    PV_SET_CHANGED = "pv_set.changed"
    PV_SET_DELETED = "pv_set.deleted"
    TAGS_CREATED = "tags.created"
    TAGS_CHANGED = "tags.changed"
    TAGS_DELETED = "tags.deleted"
    SNAPSHOT_REQUESTED = "snapshot.requested"
    SNAPSHOT_IMPORTED = "snapshot.imported"
    SNAPSHOT_CHANGED = "snapshot.changed"
    SNAPSHOT_DELETED = "snapshot.deleted"
    RESTORE_REQUESTED = "restore.requested"
    RESTORE_UNDO_REQUESTED = "restore.undo_requested"
    SCHEDULE_CHANGED = "schedule.changed"
    TOKEN_CREATED = "token.created"
    TOKEN_REVOKED = "token.revoked"
    LOGIN_LOCKED_OUT = "login.locked_out"


def record(actor, action: str, summary: str, *, via: str, target=None, details: dict | None = None) -> AuditEntry:
    """Write one audit entry; `actor` is a user (or None for the system), `target` a model instance."""
    authenticated = actor is not None and getattr(actor, "is_authenticated", False)
    return AuditEntry.objects.create(
        actor=actor if authenticated else None,
        actor_name=actor.get_username() if authenticated else "",
        action=action,
        via=via,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        summary=summary[:500],
        details=details or {},
    )


def via_api(request) -> dict:
    """The `actor` and `via` arguments of a service that an API request calls."""
    return {"actor": request.user, "via": AuditVia.API}


def field_changes(before: dict, after: dict) -> dict[str, list]:
    """The fields of `after` whose value differs from `before`, as {field: [old, new]}: the
    `changes` detail of an edit."""
    return {name: [before[name], value] for name, value in after.items() if before[name] != value}
