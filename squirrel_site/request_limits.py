"""One request-size policy for every route (docs/api.md, "Limits"; docs/security.md).

| route | largest body |
|---|---|
| the file imports (`UPLOAD_VIEWS`: the admin's registry import, the API's and the snapshot list page's snapshot import) | `SQUIRREL_MAX_UPLOAD_BYTES` (64 MiB) |
| any other `/api/` route | `SQUIRREL_API_MAX_BODY_BYTES` (16 MiB) |
| everything else: login, the pages' forms, the admin | `SQUIRREL_MAX_FORM_BYTES` (2.5 MiB) |

A body over its route's limit is answered 413, whoever sends it, logged in or not: at once when
its Content-Length says so, before the application reads a byte; while it is read when it comes
without one (chunked), by counting. `RequestBodyLimit` does this in front of Django in the ASGI
app (squirrel_site/asgi.py); `RequestBodySizeMiddleware` applies the same rule to a request that
reaches Django another way (the test client, WSGI). The API's answer is the error envelope; a
page's is one line of text. Django then sees only bodies within the limits and spools file
uploads above FILE_UPLOAD_MAX_MEMORY_SIZE to disk (settings.py), so a web process's memory does
not grow with what anonymous clients send. The web process (squirrel_site/web_server.py) applies
the same rule to a declared Content-Length before daphne receives the body at all.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.http import HttpResponse
from django.urls import Resolver404, resolve

from squirrel_site.errors import API_PREFIX, RequestTooLarge, error_body, error_response, too_large_message

# The views that take file uploads, by URL name; every other route keeps the smaller limits.
UPLOAD_VIEWS = frozenset({"admin:pvs_pv_import", "snapshots-api:snapshot-import-file", "snapshots:import"})


def body_limit_for(path: str) -> int:
    """The largest request body, in bytes, that `path` accepts."""
    try:
        if resolve(path).view_name in UPLOAD_VIEWS:
            return settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    except Resolver404:
        pass
    if path.startswith(API_PREFIX):
        return settings.API_MAX_BODY_BYTES
    return settings.MAX_FORM_BYTES


def _too_large(path: str, limit: int) -> tuple[int, str, bytes]:
    """(status, content type, body) of the 413 answer."""
    message = too_large_message(limit)
    if path.startswith(API_PREFIX):
        return 413, "application/json", json.dumps(error_body(413, RequestTooLarge.default_code, message)).encode()
    return 413, "text/plain; charset=utf-8", f"413 Request Entity Too Large: {message}\n".encode()


def too_large_response_bytes(path: str, limit: int) -> bytes:
    """The whole 413 answer as HTTP/1.1 bytes, for a server that refuses before the application."""
    status, content_type, body = _too_large(path, limit)
    head = (
        f"HTTP/1.1 {status} Request Entity Too Large\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


class _TooLarge(Exception):
    pass


class RequestBodyLimit:
    """ASGI middleware: HTTP request bodies over their route's limit get 413 (see the module)."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.application(scope, receive, send)
        limit = body_limit_for(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            return await _refuse(scope["path"], send, limit)
        received = 0
        started = False

        async def counting_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            return await self.application(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _refuse(scope["path"], send, limit)


def _content_length(scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


async def _refuse(path: str, send, limit: int) -> None:
    status, content_type, body = _too_large(path, limit)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            # The rest of the body is not read: the client must not send another request after it.
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestBodySizeMiddleware:
    """The same policy inside Django: a Content-Length over the route's limit is 413 before the
    body is read; one that is not a number of bytes is 400."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        declared = request.META.get("CONTENT_LENGTH") or "0"
        length = int(declared) if declared.strip().isdigit() else -1
        path = request.path_info
        if length < 0:
            message = f"Content-Length {declared!r} is not a number of bytes."
            if path.startswith(API_PREFIX):
                return error_response(400, "bad_request", message)
            return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")
        limit = body_limit_for(path)
        if length > limit:
            status, content_type, body = _too_large(path, limit)
            return HttpResponse(body, status=status, content_type=content_type)
        return self.get_response(request)
