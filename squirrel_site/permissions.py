"""API permission classes: reading and writing each need a Django permission (see roles.py)."""

from rest_framework.permissions import SAFE_METHODS, BasePermission, DjangoModelPermissions

_VIEW = ["%(app_label)s.view_%(model_name)s"]
# Every role reads the registry (roles.py), so this permission is what "has a role" checks.
ANY_ROLE = "pvs.view_pv"


class ModelPermissions(DjangoModelPermissions):
    """Reading needs the model's view permission; POST add, PUT/PATCH change, DELETE delete."""

    perms_map = {**DjangoModelPermissions.perms_map, "GET": _VIEW, "HEAD": _VIEW, "OPTIONS": _VIEW}


def needs(read: str | None = None, write: str | None = None) -> type[BasePermission]:
    """A permission class for views without a model queryset: `read` for safe methods, `write` for
    the others (either None refuses that kind of request)."""

    class Needs(BasePermission):
        message = f"This needs the permission {read or write}."

        def has_permission(self, request, view) -> bool:
            user = request.user
            if not (user and user.is_authenticated):
                return False
            wanted = read if request.method in SAFE_METHODS else write
            if wanted is None:
                return False
            self.message = f"This needs the permission {wanted}."
            return user.has_perm(wanted)

    Needs.__name__ = f"Needs({read}, {write})"
    return Needs


class HasRole(BasePermission):
    """Any role, for what every role may read and nothing else guards: the API schema and its docs
    page (a signed-in user without a role gets 403 everywhere, docs/security.md)."""

    message = "This needs a role (viewer, editor, operator or admin)."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.has_perm(ANY_ROLE))
