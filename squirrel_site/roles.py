"""The four roles, as Django groups: viewer, editor, operator, admin.

Groups are not nested, so each role lists every permission it needs (an operator can read too).
`sync_roles` makes the groups hold exactly these permissions; it runs after every `migrate`.
"""

from django.contrib.auth.models import Group, Permission
from django.db.models import Q

VIEWER, EDITOR, OPERATOR, ADMIN = "viewer", "editor", "operator", "admin"
ROLES = (VIEWER, EDITOR, OPERATOR, ADMIN)

# The apps whose data the roles read; the admin role also gets auth, tokens and the audit log.
_READ_APPS = ("pvs", "tags", "snapshots", "jobs")
_CURATION = [
    f"{app}.{verb}_{model}"
    for app, model in (("pvs", "pv"), ("pvs", "pvset"), ("tags", "tag"), ("tags", "taggroup"))
    for verb in ("add", "change", "delete")
]
_OPERATION = [
    # Operators curate the saved PV sets they take, compare and restore by.
    "pvs.add_pvset",
    "pvs.change_pvset",
    "pvs.delete_pvset",
    "snapshots.add_snapshot",
    "snapshots.change_snapshot",
    "snapshots.add_restore",
    "snapshots.add_snapshotschedule",
    "snapshots.change_snapshotschedule",
    "snapshots.delete_snapshotschedule",
]


def role_permissions(role: str):
    """The Permission rows a role's group holds."""
    reads = Permission.objects.filter(content_type__app_label__in=_READ_APPS, codename__startswith="view_")
    if role == VIEWER:
        return reads
    if role == ADMIN:
        return Permission.objects.all()
    extra = _CURATION if role == EDITOR else _OPERATION
    query = Q()
    for name in extra:
        app_label, codename = name.split(".")
        query |= Q(content_type__app_label=app_label, codename=codename)
    return reads | Permission.objects.filter(query)


def sync_roles() -> None:
    """Create the role groups and give each exactly its permissions."""
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set(role_permissions(role))


def sync_roles_after_migrate(sender, using="default", **kwargs) -> None:
    """post_migrate receiver: the permissions of every installed app exist by now."""
    sync_roles()
