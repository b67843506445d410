"""The API's one error format, for every error under /api/ (docs/api.md, "Errors").

    {"error": {"status": 400, "code": "invalid", "message": "title: This field is required.",
               "fields": {"title": ["This field is required."], "selection.tag": ["..."]}}}

`status` repeats the HTTP status, `code` is machine-readable (DRF's error codes, e.g.
`not_authenticated`, `permission_denied`, `not_found`, `parse_error`, `request_too_large`,
`server_error`), `message` is one readable line, and `fields` maps dotted paths of the request's
fields (`items.3.abs_tolerance`) to their messages; it is empty unless the request was invalid.
Problems with the request as a whole are under `non_field_errors` (at any depth).

DRF views answer through `api_exception_handler`; `ApiErrorMiddleware` gives Django's own
answers under /api/ (unknown URLs, crashes, oversize bodies Django refused) the same shape.
"""

from http import HTTPStatus

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.template.loader import render_to_string
from rest_framework import exceptions, status
from rest_framework.settings import api_settings

API_PREFIX = "/api/"
NON_FIELD_ERRORS = api_settings.NON_FIELD_ERRORS_KEY
# Django forms (compare, drift) name errors of the whole form "__all__"; the API says one thing.
_FORM_NON_FIELD_ERRORS = "__all__"
# Headers of Django's or DRF's error answers that a client needs to act on them.
_KEPT_HEADERS = ("Allow", "WWW-Authenticate", "Retry-After")

_MESSAGES = {
    400: "The request could not be understood.",
    403: "You may not do this.",
    404: "There is no API endpoint at this URL.",
    405: "This method is not allowed here.",
    413: "The request body is too large.",
    500: "The server failed to answer; the error is logged.",
    503: "A service Squirrel depends on is unreachable; nothing was done. Try again shortly.",
}
_CODES = {
    400: "bad_request",
    403: "permission_denied",
    404: "not_found",
    413: "request_too_large",
    500: "server_error",
    503: "service_unavailable",
}
# Seconds a client is told to wait (Retry-After) when a dependency is down or the server is full.
RETRY_AFTER = 5


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "request_too_large"


class ServiceUnavailable(exceptions.APIException):
    """A dependency (PostgreSQL, the Celery broker) is unreachable, or the server is full: the
    request was not carried out, nothing was recorded, and the client may try again after `wait`
    seconds (sent as Retry-After). Pages answer it with a readable 503 page, the API with the
    envelope (ServiceUnavailableMiddleware, api_exception_handler)."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = _MESSAGES[503]
    default_code = "service_unavailable"

    def __init__(self, detail=None, code=None, wait: int = RETRY_AFTER):
        super().__init__(detail, code)
        self.wait = wait


def too_large_message(limit: int) -> str:
    return f"The request body is larger than {limit} bytes, the most this endpoint accepts."


def error_body(status: int, code: str, message: str, fields: dict[str, list[str]] | None = None) -> dict:
    """The envelope every API error answers with."""
    return {"error": {"status": status, "code": code, "message": message, "fields": fields or {}}}


def is_error_body(data) -> bool:
    return isinstance(data, dict) and set(data) == {"error"} and isinstance(data["error"], dict)


def flatten_errors(detail, path: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as {dotted path: messages}.

    Serializer errors nest as dicts (fields), lists of dicts (`many=True`, one per item, empty for
    valid ones) and dicts with integer keys (ListField, DictField); a list of strings is the
    messages of `path` itself.
    """
    flat: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            key = NON_FIELD_ERRORS if key == _FORM_NON_FIELD_ERRORS else str(key)
            # A nested object's own errors belong to its path, not to a "non_field_errors" below it.
            child = path if key == NON_FIELD_ERRORS and path else (f"{path}.{key}" if path else key)
            _merge(flat, flatten_errors(value, child))
    elif isinstance(detail, list) and any(isinstance(item, (dict, list)) for item in detail):
        for index, item in enumerate(detail):
            if isinstance(item, (dict, list)):
                _merge(flat, flatten_errors(item, f"{path}.{index}" if path else str(index)))
            else:
                _merge(flat, {path or NON_FIELD_ERRORS: [str(item)]})
    elif isinstance(detail, list):
        flat[path or NON_FIELD_ERRORS] = [str(item) for item in detail]
    else:
        flat[path or NON_FIELD_ERRORS] = [str(detail)]
    return flat


def _merge(into: dict[str, list[str]], more: dict[str, list[str]]) -> None:
    for key, messages in more.items():
        into.setdefault(key, []).extend(messages)


def _summary(fields: dict[str, list[str]]) -> str:
    """One line: the first problem, and how many more there are."""
    path, messages = next(iter(fields.items()))
    first = messages[0] if path == NON_FIELD_ERRORS else f"{path}: {messages[0]}"
    more = sum(len(m) for m in fields.values()) - 1
    return f"{first} (and {more} more)" if more else first


def _describe(exc: exceptions.APIException) -> tuple[str, str, dict[str, list[str]]]:
    """(code, message, fields) of a DRF exception."""
    if isinstance(exc, exceptions.ValidationError):
        fields = flatten_errors(exc.detail)
        return "invalid", _summary(fields), fields
    detail = exc.detail
    if isinstance(detail, (dict, list)):
        fields = flatten_errors(detail)
        return exc.default_code, _summary(fields), fields
    return getattr(detail, "code", None) or exc.default_code, str(detail), {}


def api_exception_handler(exc, context):
    """DRF's EXCEPTION_HANDLER: DRF's own answer (headers, rollback) with the envelope as body.

    Anything it does not know (a bug) is left to Django, which logs it and answers 500, and
    ApiErrorMiddleware turns that answer into the envelope.
    """
    # Not at the top: rest_framework.views imports the parser setting, whose module imports this one.
    from rest_framework.views import exception_handler as drf_exception_handler

    if isinstance(exc, Http404):
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    elif isinstance(exc, (OperationalError, InterfaceError)):
        exc = database_unavailable()
    elif isinstance(exc, RequestDataTooBig):
        # Django refused an upload over DATA_UPLOAD_MAX_MEMORY_SIZE that came without a Content-Length.
        exc = RequestTooLarge(too_large_message(settings.DATA_UPLOAD_MAX_MEMORY_SIZE))
    response = drf_exception_handler(exc, context)
    if response is not None:
        response.data = error_body(response.status_code, *_describe(exc))
    return response


def database_unavailable() -> ServiceUnavailable:
    """What a request is told when PostgreSQL cannot be reached (or gives no connection in time)."""
    return ServiceUnavailable("The database is unreachable; nothing was done. Try again shortly.")


def service_unavailable_response(request, exc: ServiceUnavailable):
    """503 with Retry-After: the envelope under /api/, a readable page elsewhere."""
    if request.path_info.startswith(API_PREFIX):
        response = JsonResponse(error_body(503, exc.default_code, str(exc.detail)), status=503)
    else:
        from django.http import HttpResponse

        page = render_to_string("squirrel/503.html", {"message": str(exc.detail), "retry_after": exc.wait})
        response = HttpResponse(page, status=503)
    response["Retry-After"] = str(exc.wait)
    return response


def error_response(status: int, code: str | None = None, message: str | None = None) -> JsonResponse:
    """A JSON error answer built outside DRF (middleware, Django's handlers)."""
    phrase = HTTPStatus(status).phrase
    return JsonResponse(
        error_body(
            status,
            code or _CODES.get(status, phrase.lower().replace(" ", "_").replace("-", "_")),
            message or _MESSAGES.get(status, f"{phrase}."),
        ),
        status=status,
    )


class ServiceUnavailableMiddleware:
    """A request that found PostgreSQL (or another dependency) unreachable answers 503 with
    Retry-After, never 500: a page readable by a person, the envelope under /api/."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exc):
        if isinstance(exc, (OperationalError, InterfaceError)):
            exc = database_unavailable()
        if isinstance(exc, ServiceUnavailable):
            return service_unavailable_response(request, exc)
        return None


def server_error(request, *args, **kwargs):
    """handler500: an unreachable database raised anywhere (a middleware loading the session
    included, where process_exception does not reach) answers 503; anything else is Django's 500."""
    import sys

    from django.views.defaults import server_error as django_server_error

    exc = sys.exc_info()[1]
    if isinstance(exc, (OperationalError, InterfaceError)):
        return service_unavailable_response(request, database_unavailable())
    if isinstance(exc, ServiceUnavailable):
        return service_unavailable_response(request, exc)
    return django_server_error(request, *args, **kwargs)


class ApiErrorMiddleware:
    """Every error answer under /api/ is the JSON envelope, whoever made it.

    DRF views already answer with it (api_exception_handler); this rewrites what Django answers
    itself: 404 for unknown URLs, 500 for a crash (Django has logged it with its traceback; the
    client gets no traceback, not even with DEBUG on), 400 for a body Django refused, and errors
    that a DRF view rendered in another format (the schema's YAML). It goes first in MIDDLEWARE so
    that it sees the answers of every other middleware.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code < 400 or not request.path_info.startswith(API_PREFIX):
            return response
        if response.get("Content-Type", "").startswith("application/json") and not response.streaming:
            return response
        data = getattr(response, "data", None)
        if is_error_body(data):
            replacement = JsonResponse(data, status=response.status_code)
        else:
            replacement = error_response(response.status_code)
        for header in _KEPT_HEADERS:
            if header in response:
                replacement[header] = response[header]
        return replacement
