"""Admission control of a web process: how many HTTP requests run at once, how many may wait.

Django's ASGI handler runs every request's synchronous code (middleware, views, queries) in a
thread of its own, so without a bound a burst of 200 requests is 200 threads and 200 database
connections, and PostgreSQL refuses the ones beyond max_connections (500s, and other processes
starved). `bounded()` wraps the HTTP app: at most SQUIRREL_WEB_CONCURRENCY requests are inside
Django at once; up to SQUIRREL_WEB_QUEUE more wait, each at most SQUIRREL_WEB_QUEUE_TIMEOUT
seconds, in arrival order; any request beyond that, or one that waited too long, is answered 503
with Retry-After at once, on the event loop, without a thread or the database. The connection
pool (settings.DATABASES, SQUIRREL_DB_POOL) is sized from the same number; docs/operations.md,
"Requests and database connections", gives the model and the sizing rule.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

from django.conf import settings
from django.template.loader import render_to_string

from squirrel_site.errors import API_PREFIX, error_body

log = logging.getLogger(__name__)

BUSY_MESSAGE = "The server is answering as many requests as it can; nothing was done. Try again shortly."
# Seconds a turned-away client is told to wait: a full queue drains in about a second.
BUSY_RETRY_AFTER = 2
# At most one warning per this many seconds while requests are turned away.
_LOG_INTERVAL = 10.0


class Admission:
    """An ASGI wrapper: `concurrency` requests run in `app` at once, `queue` more wait at most
    `max_wait` seconds each, the rest are answered 503 (see the module's docstring). The counters
    only change on the event loop."""

    def __init__(self, app, *, concurrency: int, queue: int, max_wait: float):
        if concurrency < 1 or queue < 0 or max_wait < 0:
            raise ValueError("concurrency must be at least 1, queue and max_wait at least 0")
        self.app = app
        self.concurrency, self.queue, self.max_wait = concurrency, queue, max_wait
        self.running = self.waiting = self.turned_away = 0
        # Made on first use, in the server's event loop.
        self._slots: asyncio.Semaphore | None = None
        self._page: bytes | None = None
        self._logged_at = 0.0

    async def __call__(self, scope, receive, send):
        if not await self._enter():
            await self._answer_busy(scope, send)
            return
        self.running += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.running -= 1
            self._slots.release()

    async def _enter(self) -> bool:
        """Take a slot: at once, after waiting in the queue, or not at all (False)."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        if not self._slots.locked():
            await self._slots.acquire()
            return True
        if self.waiting >= self.queue:
            return False
        self.waiting += 1
        try:
            await asyncio.wait_for(self._slots.acquire(), self.max_wait)
        except TimeoutError:
            return False
        finally:
            self.waiting -= 1
        return True

    async def _answer_busy(self, scope, send) -> None:
        """503 with Retry-After: the API's error envelope under /api/, a short page elsewhere."""
        self.turned_away += 1
        now = time.monotonic()
        if now - self._logged_at >= _LOG_INTERVAL:
            self._logged_at = now
            log.warning(
                "Web process full (%d running, %d waiting): %d requests answered 503 so far",
                self.running,
                self.waiting,
                self.turned_away,
            )
        path = scope["path"].removeprefix(scope.get("root_path", ""))
        if path.startswith(API_PREFIX):
            body = json.dumps(error_body(503, "service_unavailable", BUSY_MESSAGE)).encode()
            content_type = b"application/json"
        else:
            body, content_type = self._busy_page(), b"text/html; charset=utf-8"
        headers = [
            (b"content-type", content_type),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(BUSY_RETRY_AFTER).encode()),
            (b"cache-control", b"no-store"),
        ]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _busy_page(self) -> bytes:
        # The template reads no request and no database; rendered once, on the first refusal.
        if self._page is None:
            context = {"message": BUSY_MESSAGE, "retry_after": BUSY_RETRY_AFTER}
            self._page = render_to_string("squirrel/503.html", context).encode()
        return self._page


def bounded(app) -> Admission:
    """`app` behind admission control sized by the settings (SQUIRREL_WEB_*)."""
    return Admission(
        app, concurrency=settings.WEB_CONCURRENCY, queue=settings.WEB_QUEUE, max_wait=settings.WEB_QUEUE_TIMEOUT
    )
