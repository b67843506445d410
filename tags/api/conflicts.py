"""tags.registry.RegistryChanged as an API answer: 409, for every view set that writes the registry
(PVs, tags, tag groups), and where the schema says so."""

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import APIException

from squirrel_site.schema import envelope_response
from tags.registry import RegistryChanged

REGISTRY_CHANGED = envelope_response(
    "The registry changed between validation and writing (another request took an address or a name, or "
    "deleted a PV, tag or tag group this one names); nothing was stored. Sending the request again says what "
    "is wrong now."
)


class RegistryConflict(APIException):
    """Another change won the race between validation and writing; try again."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class RegistryConflictMixin:
    """A view set whose writes may raise RegistryChanged answers 409 with its message."""

    def handle_exception(self, exc):
        if isinstance(exc, RegistryChanged):
            exc = RegistryConflict(str(exc))
        return super().handle_exception(exc)


def conflicting_writes(serializer) -> dict:
    """`extend_schema_view` arguments: create, update and partial_update may answer 409."""
    return {
        "create": extend_schema(responses={201: serializer, 409: REGISTRY_CHANGED}),
        "update": extend_schema(responses={200: serializer, 409: REGISTRY_CHANGED}),
        "partial_update": extend_schema(responses={200: serializer, 409: REGISTRY_CHANGED}),
    }
