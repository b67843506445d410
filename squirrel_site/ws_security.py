"""WebSocket handshakes and open sockets: the same Origin only, and a user who still may listen.

`SameOriginValidator` wraps the WebSocket app (squirrel_site/asgi.py): a handshake's Origin must
be this site's own origin, scheme, host and port alike, as the browser that loaded the page sends
it, or one of settings.CSRF_TRUSTED_ORIGINS; its Host must be one of ALLOWED_HOSTS. Anything else
(another port on the same host, http for an https site, no Origin) is refused before a consumer
runs, so a page on another origin cannot ride the session cookie.

`SessionWatch` re-checks an open socket's user every few seconds: a socket outlives no logout
(the session is gone), no deactivation, no password change (the session's auth hash no longer
matches) and no loss of the permission it was opened with; the socket is closed with 4403.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from importlib import import_module
from urllib.parse import urlsplit

from channels.db import database_sync_to_async
from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.http.request import split_domain_port, validate_host
from django.utils.crypto import constant_time_compare

log = logging.getLogger(__name__)

_DEFAULT_PORTS = {"http": "80", "https": "443"}
# The close code a socket gets when its user may no longer hold it (4000-4999: the application's).
CLOSE_NOT_ALLOWED = 4403


def _origin(scheme: str, netloc: str) -> tuple[str, str, str] | None:
    """(scheme, host, port) of an origin, the port spelled out; None if it is not one."""
    scheme = scheme.lower()
    if scheme not in _DEFAULT_PORTS or not netloc:
        return None
    host, port = split_domain_port(netloc.lower())
    if not host:
        return None
    return scheme, host, port or _DEFAULT_PORTS[scheme]


def _parse_origin(value: str) -> tuple[str, str, str] | None:
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        return None
    return _origin(parts.scheme, parts.netloc)


def _behind_tls_proxy(headers: dict[bytes, bytes]) -> bool:
    proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if not proxy:
        return False
    header, value = proxy
    name = header.removeprefix("HTTP_").replace("_", "-").lower().encode("latin-1")
    return headers.get(name, b"").decode("latin-1").split(",")[0].strip() == value


def origin_allowed(scope: dict) -> bool:
    """True if the handshake in `scope` comes from this site's own origin or a trusted one."""
    headers = {name.lower(): value for name, value in scope.get("headers", [])}
    origin = _parse_origin(headers.get(b"origin", b"").decode("latin-1"))
    if origin is None:
        return False
    trusted = {_parse_origin(value) for value in settings.CSRF_TRUSTED_ORIGINS}
    if origin in trusted:
        return True
    host = headers.get(b"host", b"").decode("latin-1")
    if not host or not validate_host(split_domain_port(host.lower())[0], settings.ALLOWED_HOSTS):
        return False
    secure = scope.get("scheme") == "wss" or _behind_tls_proxy(headers)
    return origin == _origin("https" if secure else "http", host)


class SameOriginValidator:
    """ASGI middleware for WebSockets: handshakes from any other origin are refused (HTTP 403)."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and not origin_allowed(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)


def _session_store(session_key: str):
    return import_module(settings.SESSION_ENGINE).SessionStore(session_key)


def still_allowed(user_id: int, session_key: str | None, permission: str) -> bool:
    """Whether the socket opened by `user_id` in session `session_key` may stay open: the session
    still exists and names that user with the same auth hash, the user is active and still holds
    `permission`."""
    if session_key is None:
        return False
    data = _session_store(session_key).load()
    if str(data.get(SESSION_KEY)) != str(user_id):
        return False  # logged out (the session is flushed), expired, or someone else's now
    user = get_user_model()._default_manager.filter(pk=user_id, is_active=True).first()
    if user is None:
        return False
    stored_hash = data.get(HASH_SESSION_KEY, "")
    if not constant_time_compare(stored_hash, user.get_session_auth_hash()):
        return False  # the password changed: Django ends every other session of the user
    if data.get(BACKEND_SESSION_KEY) and data[BACKEND_SESSION_KEY] not in settings.AUTHENTICATION_BACKENDS:
        return False
    return user.has_perm(permission)


class SessionWatch:
    """Closes `consumer`'s socket once its user may no longer hold it (checked every `interval` s)."""

    def __init__(self, consumer, permission: str, interval: float | None = None):
        self.consumer, self.permission = consumer, permission
        self.interval = interval if interval is not None else settings.WEBSOCKET_RECHECK_SECONDS
        user, session = consumer.scope.get("user"), consumer.scope.get("session")
        self.user_id = getattr(user, "pk", None)
        self.session_key = getattr(session, "session_key", None)
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        check = database_sync_to_async(still_allowed)
        while True:
            await asyncio.sleep(self.interval)
            try:
                allowed = await check(self.user_id, self.session_key, self.permission)
            except Exception:
                log.warning("Could not re-check a WebSocket's user; trying again", exc_info=True)
                continue
            if not allowed:
                log.info("Closing a WebSocket of user %s: no longer allowed", self.user_id)
                self._task = None
                await self.consumer.close(code=CLOSE_NOT_ALLOWED)
                return
