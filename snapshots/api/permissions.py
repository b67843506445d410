"""Who may change the machine or the archive through the API (reading needs a login only)."""

from rest_framework.permissions import SAFE_METHODS, BasePermission, DjangoModelPermissions


class CanRestore(BasePermission):
    """Previews, executions and undos write to the machine: they need `snapshots.add_restore`."""

    message = "Restoring needs the permission to add restores (snapshots.add_restore)."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        return request.method in SAFE_METHODS or user.has_perm("snapshots.add_restore")


class SnapshotPermissions(DjangoModelPermissions):
    """Reading needs a login; taking or importing needs add_snapshot, retagging change_snapshot."""

    perms_map = {**DjangoModelPermissions.perms_map, "GET": [], "HEAD": [], "OPTIONS": []}
