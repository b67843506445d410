"""Admission control (squirrel_site.admission) around a stand-in ASGI app whose requests finish
when the test says so: how many run, how many wait, and what the rest are answered.
The real server under load is squirrel_site/tests/test_load.py."""

import asyncio
import json

import pytest

from squirrel_site.admission import BUSY_RETRY_AFTER, Admission, bounded


class HeldApp:
    """An ASGI app that answers 200 once `release` is set; counts the requests inside it."""

    def __init__(self):
        self.release = asyncio.Event()
        self.inside = self.most_inside = 0

    async def __call__(self, scope, receive, send):
        self.inside += 1
        self.most_inside = max(self.most_inside, self.inside)
        try:
            await self.release.wait()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"done"})
        finally:
            self.inside -= 1


async def request(app, path: str = "/api/v1/pvs/") -> dict:
    """One request through `app`: {"status", "headers", "body"}."""
    answer = {}

    async def send(message):
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            answer["headers"] = {k.decode(): v.decode() for k, v in message["headers"]}
        else:
            answer["body"] = message["body"]

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    await app({"type": "http", "path": path, "root_path": ""}, receive, send)
    return answer


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_at_most_concurrency_requests_run_and_the_queued_ones_run_after():
    async def scenario():
        inner = HeldApp()
        app = Admission(inner, concurrency=3, queue=10, max_wait=5.0)
        tasks = [asyncio.create_task(request(app)) for _ in range(8)]
        await settle()
        assert (inner.inside, app.running, app.waiting) == (3, 3, 5)
        inner.release.set()
        return inner, await asyncio.gather(*tasks)

    inner, answers = asyncio.run(scenario())

    assert [a["status"] for a in answers] == [200] * 8 and inner.most_inside == 3


def test_beyond_the_queue_the_api_answers_503_with_retry_after_and_the_envelope_at_once():
    async def scenario():
        inner = HeldApp()
        app = Admission(inner, concurrency=2, queue=1, max_wait=5.0)
        held = [asyncio.create_task(request(app)) for _ in range(3)]
        await settle()
        turned_away = await asyncio.wait_for(request(app), 0.5)
        inner.release.set()
        await asyncio.gather(*held)
        return turned_away

    answer = asyncio.run(scenario())

    assert answer["status"] == 503 and answer["headers"]["retry-after"] == str(BUSY_RETRY_AFTER)
    assert answer["headers"]["content-type"] == "application/json"
    error = json.loads(answer["body"])["error"]
    assert (error["status"], error["code"], error["fields"]) == (503, "service_unavailable", {})
    assert "Try again" in error["message"]


def test_a_page_beyond_the_queue_gets_a_readable_503_page():
    async def scenario():
        inner = HeldApp()
        app = Admission(inner, concurrency=1, queue=0, max_wait=5.0)
        held = asyncio.create_task(request(app, "/snapshots/"))
        await settle()
        turned_away = await request(app, "/snapshots/")
        inner.release.set()
        await held
        return turned_away

    answer = asyncio.run(scenario())

    assert answer["status"] == 503 and answer["headers"]["retry-after"] == str(BUSY_RETRY_AFTER)
    assert answer["headers"]["content-type"].startswith("text/html")
    assert b"Squirrel is unavailable for a moment" in answer["body"] and b"Nothing you asked for" in answer["body"]


def test_a_request_that_waits_longer_than_the_limit_is_answered_503_and_leaves_the_queue():
    async def scenario():
        inner = HeldApp()
        app = Admission(inner, concurrency=1, queue=5, max_wait=0.05)
        held = asyncio.create_task(request(app))
        await settle()
        waited = await request(app)
        waiting_after = app.waiting
        inner.release.set()
        await held
        return waited, waiting_after, await request(app)

    waited, waiting_after, later = asyncio.run(scenario())

    assert (waited["status"], waiting_after, later["status"]) == (503, 0, 200)


def test_a_request_that_fails_gives_its_slot_back():
    class Failing:
        async def __call__(self, scope, receive, send):
            raise RuntimeError("a bug")

    async def scenario():
        app = Admission(Failing(), concurrency=1, queue=0, max_wait=1.0)
        for _ in range(3):
            with pytest.raises(RuntimeError):
                await request(app)
        return app.running

    assert asyncio.run(scenario()) == 0


def test_the_bound_comes_from_the_settings(settings):
    settings.WEB_CONCURRENCY, settings.WEB_QUEUE, settings.WEB_QUEUE_TIMEOUT = 5, 7, 1.5

    app = bounded(HeldApp())

    assert (app.concurrency, app.queue, app.max_wait) == (5, 7, 1.5)
