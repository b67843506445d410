"""WebSockets: the same Origin only (scheme, host and port), and sockets that outlive no user."""

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Group

from jobs.models import Job, JobType
from squirrel_site.asgi import application
from squirrel_site.ws_security import CLOSE_NOT_ALLOWED, origin_allowed


def scope(origin: str | None, host: str | None = "127.0.0.1:8000", scheme: str = "ws", **headers) -> dict:
    pairs = [(b"origin", origin.encode())] if origin is not None else []
    pairs += [(b"host", host.encode())] if host is not None else []
    pairs += [(name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()]
    return {"type": "websocket", "scheme": scheme, "headers": pairs}


@pytest.mark.parametrize(
    "origin, host, scheme",
    [
        ("http://127.0.0.1:8000", "127.0.0.1:8000", "ws"),
        ("http://localhost", "localhost", "ws"),
        ("http://localhost:80", "localhost", "ws"),
        ("https://127.0.0.1", "127.0.0.1:443", "wss"),
        ("HTTP://LOCALHOST:8000", "localhost:8000", "ws"),
    ],
)
def test_the_pages_own_origin_is_allowed(origin, host, scheme):
    assert origin_allowed(scope(origin, host, scheme))


@pytest.mark.parametrize(
    "origin, host, scheme",
    [
        ("http://127.0.0.1:9999", "127.0.0.1:8000", "ws"),  # another port
        ("https://127.0.0.1", "127.0.0.1", "ws"),  # another scheme
        ("http://127.0.0.1", "127.0.0.1", "wss"),
        ("http://localhost:1234", "127.0.0.1:8000", "ws"),  # another host and port
        ("http://evil.example.com", "evil.example.com", "ws"),  # a host not in ALLOWED_HOSTS
        ("null", "127.0.0.1", "ws"),
        ("http://127.0.0.1/path", "127.0.0.1", "ws"),
        (None, "127.0.0.1", "ws"),  # no Origin
        ("http://127.0.0.1", None, "ws"),  # no Host
        ("ftp://127.0.0.1", "127.0.0.1", "ws"),
    ],
)
def test_any_other_origin_is_refused(origin, host, scheme):
    assert not origin_allowed(scope(origin, host, scheme))


def test_a_trusted_origin_is_allowed(settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://squirrel.example.org"]

    assert origin_allowed(scope("https://squirrel.example.org", "internal-host:8000"))
    assert not origin_allowed(scope("https://squirrel.example.org:8443", "internal-host:8000"))


def test_behind_a_tls_proxy_the_https_origin_is_the_sites_own(settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

    assert origin_allowed(scope("https://localhost", "localhost", x_forwarded_proto="https"))
    assert not origin_allowed(scope("http://localhost", "localhost", x_forwarded_proto="https"))


# Open sockets, through the real ASGI app ------------------------------------------------------

SAME_ORIGIN = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]


@pytest.fixture
def fast_recheck(settings):
    settings.WEBSOCKET_RECHECK_SECONDS = 0.1


@pytest.fixture
def viewer_session(client, make_user, transactional_db):
    user = make_user("viewer", "watched")
    client.force_login(user)
    return user, [(b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]


async def _closed_code(communicator, timeout: float = 5.0):
    message = await communicator.receive_output(timeout)
    while message["type"] != "websocket.close":
        message = await communicator.receive_output(timeout)
    return message.get("code")


def _lose_access(how: str, client, user) -> None:
    if how == "deactivated":
        user.is_active = False
        user.save(update_fields=["is_active"])
    elif how == "logged out":
        client.logout()
    elif how == "role removed":
        user.groups.remove(Group.objects.get(name="viewer"))
    elif how == "password changed":
        user.set_password("a-new-password")
        user.save(update_fields=["password"])


@pytest.mark.parametrize("how", ["deactivated", "logged out", "role removed", "password changed"])
@pytest.mark.parametrize("path", ["/ws/live/", "job"])
def test_an_open_socket_is_closed_once_its_user_may_no_longer_hold_it(
    client, viewer_session, redis_db, fast_recheck, how, path
):
    user, cookie = viewer_session
    if path == "job":
        path = f"/ws/jobs/{Job.objects.create(type=JobType.SNAPSHOT, created_by=user).pk}/"

    async def scenario():
        communicator = WebsocketCommunicator(application, path, headers=SAME_ORIGIN + cookie)
        connected, _ = await communicator.connect()
        assert connected
        from channels.db import database_sync_to_async

        await database_sync_to_async(_lose_access)(how, client, user)
        return await _closed_code(communicator)

    assert async_to_sync(scenario)() == CLOSE_NOT_ALLOWED


def test_a_socket_whose_user_keeps_access_stays_open(client, viewer_session, redis_db, fast_recheck):
    _, cookie = viewer_session

    async def scenario():
        communicator = WebsocketCommunicator(application, "/ws/live/", headers=SAME_ORIGIN + cookie)
        connected, _ = await communicator.connect()
        assert connected
        assert await communicator.receive_nothing(timeout=0.6)  # six re-checks
        await communicator.send_json_to({"subscribe": ["T:STILL"]})
        first = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return first

    assert async_to_sync(scenario)()["full"] is True


@pytest.mark.parametrize("origin", [b"http://127.0.0.1:9999", b"https://127.0.0.1", b"http://localhost:1234"])
def test_a_handshake_from_another_origin_is_refused_even_with_the_session_cookie(viewer_session, redis_db, origin):
    _, cookie = viewer_session

    async def scenario():
        headers = [(b"origin", origin), (b"host", b"127.0.0.1")] + cookie
        communicator = WebsocketCommunicator(application, "/ws/live/", headers=headers)
        connected, _ = await communicator.connect()
        return connected

    assert async_to_sync(scenario)() is False
