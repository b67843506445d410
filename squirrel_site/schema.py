"""The OpenAPI schema's shared parts: the error envelope on every operation, EPICS values, and
query parameters described from the Django forms that parse them (compare, drift)."""

from django import forms
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import is_list_serializer
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers

JSON = "application/json"

# An EPICS value as the API writes it: a number, a string (also "NaN", "Infinity" and "-Infinity",
# which strict JSON has no literal for), an array of those, or null (no value).
_SCALAR = {"oneOf": [{"type": "number"}, {"type": "string"}]}
PV_VALUE_SCHEMA = {
    "oneOf": [{"type": "number"}, {"type": "string"}, {"type": "array", "items": _SCALAR}],
    "nullable": True,
    "description": 'A number, a string, an array, or null; non-finite floats are "NaN", "Infinity", "-Infinity".',
}


class ApiErrorDetailSerializer(serializers.Serializer):
    """The body of the error envelope (squirrel_site.errors)."""

    status = serializers.IntegerField(help_text="The HTTP status, repeated.")
    code = serializers.CharField(help_text="Machine-readable: invalid, not_authenticated, permission_denied, ...")
    message = serializers.CharField(help_text="One readable line.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Messages by dotted field path (`items.3.abs_tolerance`); empty unless the request was invalid.",
    )


class ApiErrorSerializer(serializers.Serializer):
    """Every API error: `{"error": {...}}`."""

    error = ApiErrorDetailSerializer()


def envelope_response(description: str) -> OpenApiResponse:
    """An error answer with the envelope, for `extend_schema(responses=...)`."""
    return OpenApiResponse(ApiErrorSerializer, description=description)


LIVE_VALUES_UNAVAILABLE = envelope_response("Live values are unavailable: Redis cannot be reached.")
JOB_QUEUE_UNAVAILABLE = envelope_response(
    "The job queue (Redis) or the database is unreachable: nothing was recorded and no job runs. "
    "Try again after the `Retry-After` header's seconds."
)

_ERRORS = {
    "400": "The request is not valid; `fields` says which of its parts are wrong and why.",
    "401": "No credentials, or wrong ones: send `Authorization: Token <token>` (or log in).",
    "403": "Logged in, but not allowed to do this (or a session request without its CSRF token).",
    "404": "No such object, or an invalid cursor.",
    "413": "The request body is over the limit (docs/api.md, Limits).",
    "415": "The request body is not in the format this operation takes (JSON unless it says otherwise).",
}


def _add_list_limits(schema: dict, field) -> None:
    """What drf-spectacular leaves out of a list's schema: that it may not be empty (allow_empty)
    and, for a `many=True` serializer, its min_length and max_length (a ListField's come from its
    validators)."""
    if schema.get("type") != "array":
        return
    least = getattr(field, "min_length", None) or (0 if getattr(field, "allow_empty", True) else 1)
    if least:
        schema["minItems"] = max(least, schema.get("minItems", 0))
    if is_list_serializer(field) and field.max_length is not None:
        schema["maxItems"] = field.max_length


class SquirrelAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema; every operation also documents the error answers it can give,
    all with the error envelope, so views need no boilerplate for them; that an optional query
    parameter given empty is the same as none (Django forms and filtersets parse them, as for the
    pages), except a repeatable one, whose empty item is refused; and how many items a list in a
    body takes (squirrel_site.limits)."""

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if schema and direction == "request":
            _add_list_limits(schema, field)
        return schema

    def _unwrap_list_serializer(self, serializer, direction):
        schema = super()._unwrap_list_serializer(serializer, direction)
        if schema and direction == "request":
            _add_list_limits(schema, serializer)
        return schema

    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        for parameter in operation.get("parameters", []):
            repeats = parameter["schema"].get("type") == "array"
            if parameter["in"] == "query" and not parameter.get("required") and not repeats:
                parameter["allowEmptyValue"] = True
        responses = operation["responses"]
        for status in self._error_statuses(operation):
            if status not in responses:
                responses[status] = self._get_response_for_code(
                    envelope_response(_ERRORS[status]), status, media_types=[JSON]
                )
        return operation

    @staticmethod
    def _error_statuses(operation: dict) -> list[str]:
        locations = {parameter["in"] for parameter in operation.get("parameters", [])}
        query = {parameter["name"] for parameter in operation.get("parameters", []) if parameter["in"] == "query"}
        body = "requestBody" in operation
        public = {} in operation.get("security", [{}])
        statuses = []
        if body or query - {"cursor"}:
            statuses.append("400")
        if not public:  # open to everybody (the health probe): no credentials to lack or refuse
            statuses += ["401", "403"]
        if "path" in locations or "cursor" in query:
            statuses.append("404")
        if body:
            statuses += ["413", "415"]
        return statuses


def _parameter_schema(field: forms.Field) -> dict:
    """The schema of the query parameter a form field parses (an array when it repeats)."""
    schema = getattr(field, "openapi_schema", None)
    if schema is not None:
        return schema
    if isinstance(field, forms.ModelMultipleChoiceField):
        return {"type": "array", "items": {"type": "integer"}}
    if isinstance(field, forms.ModelChoiceField):
        return {"type": "integer"}
    if isinstance(field, forms.MultipleChoiceField):
        return {"type": "array", "items": {"type": "string", "enum": [value for value, _ in field.choices]}}
    if isinstance(field, forms.TypedChoiceField) and field.coerce is int:
        return {"type": "integer", "enum": [int(value) for value, _ in field.choices if value != ""]}
    if isinstance(field, forms.ChoiceField):
        return {"type": "string", "enum": [value for value, _ in field.choices if value != ""]}
    if isinstance(field, forms.BooleanField):
        return {"type": "boolean"}
    if isinstance(field, forms.IntegerField):  # FloatField and DecimalField too
        schema = {"type": "integer" if type(field) is forms.IntegerField else "number"}
        if field.min_value is not None:
            schema["minimum"] = field.min_value
        if field.max_value is not None:
            schema["maximum"] = field.max_value
        return schema
    if isinstance(field, forms.CharField):
        return {"type": "string", "maxLength": field.max_length} if field.max_length else {"type": "string"}
    raise TypeError(f"Give {type(field).__name__} an `openapi_schema` or describe it in squirrel_site.schema.")


def form_parameters(form: forms.Form) -> list[OpenApiParameter]:
    """Query parameters described from the form that parses them, so the two cannot disagree.

    A field class the mapping does not know carries its own `openapi_schema`.
    """
    return [
        OpenApiParameter(
            name,
            type=_parameter_schema(field),
            location=OpenApiParameter.QUERY,
            required=field.required,
            description=str(field.help_text or field.label or ""),
        )
        for name, field in form.fields.items()
    ]
