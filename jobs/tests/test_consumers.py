"""/ws/jobs/<id>/ through the real ASGI app and the Redis channel layer."""

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator

from jobs.models import Job, JobType
from jobs.progress import push_state
from squirrel_site.asgi import application

ORIGIN = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]


@pytest.fixture
def owner(transactional_db, make_user):
    return make_user("operator", "op")


@pytest.fixture
def job(owner):
    return Job.objects.create(type=JobType.SNAPSHOT, created_by=owner)


def _session_cookie(client, user):
    client.force_login(user)
    return [(b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]


async def _connect(path, headers):
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await communicator.connect()
    return communicator, connected, code


def test_the_owner_gets_the_state_then_every_change(client, owner, job, redis_db):
    headers = ORIGIN + _session_cookie(client, owner)

    async def scenario():
        communicator, connected, _ = await _connect(f"/ws/jobs/{job.id}/", headers)
        assert connected
        first = await communicator.receive_json_from(timeout=5)
        await sync_start_and_push(job)
        second = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return first, second

    from channels.db import database_sync_to_async

    @database_sync_to_async
    def sync_start_and_push(job):
        job.start()
        job.set_progress(30, "reading")
        push_state(job)

    first, second = async_to_sync(scenario)()
    assert (first["status"], first["progress"]) == ("pending", 0)
    assert (second["status"], second["progress"], second["message"]) == ("running", 30, "reading")


def test_anonymous_sockets_are_refused(job, redis_db):
    async def scenario():
        communicator, connected, code = await _connect(f"/ws/jobs/{job.id}/", ORIGIN)
        return connected, code

    assert async_to_sync(scenario)()[0] is False


def test_another_users_job_is_not_shown(client, job, redis_db, make_user):
    stranger = make_user("operator", "stranger")
    headers = ORIGIN + _session_cookie(client, stranger)

    async def scenario():
        communicator, connected, code = await _connect(f"/ws/jobs/{job.id}/", headers)
        return connected, code

    assert async_to_sync(scenario)()[0] is False


def test_a_user_without_a_role_may_not_follow_even_their_own_job(client, make_user, redis_db, transactional_db):
    nobody = make_user(None)
    job = Job.objects.create(type=JobType.SNAPSHOT, created_by=nobody)
    headers = ORIGIN + _session_cookie(client, nobody)

    async def scenario():
        communicator, connected, code = await _connect(f"/ws/jobs/{job.id}/", headers)
        return connected

    assert async_to_sync(scenario)() is False


def test_a_foreign_origin_is_refused(client, owner, job, redis_db):
    headers = [(b"origin", b"http://evil.example.com")] + _session_cookie(client, owner)

    async def scenario():
        communicator, connected, code = await _connect(f"/ws/jobs/{job.id}/", headers)
        return connected

    assert async_to_sync(scenario)() is False
