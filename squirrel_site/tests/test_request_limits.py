"""One body-size policy for every route, through the real ASGI app and a real daphne."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.client import HTTPConnection

import pytest
from asgiref.sync import async_to_sync
from channels.testing import HttpCommunicator
from django.conf import settings as django_settings

from squirrel_site.asgi import application
from squirrel_site.request_limits import UPLOAD_VIEWS, body_limit_for
from squirrel_site.testing import eventually
from squirrel_site.testing.workers import free_port

MIB = 1024 * 1024


def post(path: str, body: bytes, content_type: bytes = b"application/x-www-form-urlencoded", length: bool = True):
    headers = [(b"content-type", content_type), (b"host", b"127.0.0.1")]
    if length:
        headers.append((b"content-length", str(len(body)).encode()))
    return async_to_sync(HttpCommunicator(application, "POST", path, body=body, headers=headers).get_response)()


def test_every_route_has_a_limit(settings):
    settings.MAX_FORM_BYTES, settings.API_MAX_BODY_BYTES, settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10, 20, 30

    assert [body_limit_for(path) for path in ("/accounts/login/", "/admin/pvs/pv/add/", "/nowhere/")] == [10] * 3
    assert body_limit_for("/api/v1/pvs/bulk/") == body_limit_for("/api/v1/nowhere/") == 20
    assert body_limit_for("/admin/pvs/pv/import/") == body_limit_for("/api/v1/snapshots/import/") == 30


def test_the_upload_views_exist():
    from django.urls import reverse

    assert all(reverse(name) for name in UPLOAD_VIEWS)


def test_an_anonymous_login_post_over_the_form_limit_is_413_as_text(settings, transactional_db):
    settings.MAX_FORM_BYTES = 1000

    response = post("/accounts/login/", b"username=a&password=" + b"x" * 2000)

    assert response["status"] == 413
    assert response["body"].startswith(b"413 Request Entity Too Large")


def test_a_chunked_body_over_the_limit_is_413_while_it_is_read(settings, transactional_db):
    settings.MAX_FORM_BYTES = 1000

    response = post("/accounts/login/", b"username=a&password=" + b"x" * 2000, length=False)

    assert response["status"] == 413


def test_an_api_body_over_the_limit_is_413_with_the_envelope(settings, transactional_db):
    settings.API_MAX_BODY_BYTES = 100

    response = post("/api/v1/pvs/bulk/", json.dumps([{"setpoint_address": "X" * 200}]).encode(), b"application/json")

    error = json.loads(response["body"])["error"]
    assert (response["status"], error["code"]) == (413, "request_too_large")


def test_a_form_within_the_limit_reaches_django(settings, transactional_db):
    response = post("/accounts/login/", b"username=a&password=b")

    assert response["status"] == 403  # Django's CSRF check: the request got through the limit


# A real daphne: memory stays bounded under anonymous large uploads --------------------------------

PORT = free_port()  # each process of a parallel run its own


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _multipart(size: int) -> tuple[bytes, str]:
    boundary = "squirrel-boundary"
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n\r\n'.encode()
    return head + b"x" * size + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _send(body: bytes, content_type: str, results: list) -> None:
    connection = HTTPConnection("127.0.0.1", PORT, timeout=60)
    try:
        connection.request("POST", "/accounts/login/", body=body, headers={"Content-Type": content_type})
        results.append(connection.getresponse().status)
    except (ConnectionError, OSError) as exc:  # daphne may close before the whole body is sent
        results.append(type(exc).__name__)
    finally:
        connection.close()


@pytest.fixture
def daphne(transactional_db):
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE=django_settings.SETTINGS_MODULE,
        SQUIRREL_DB_NAME=django_settings.DATABASES["default"]["NAME"],
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "squirrel_site.web_server",
            "-b",
            "127.0.0.1",
            "-p",
            str(PORT),
            "squirrel_site.asgi:application",
        ],
        cwd=django_settings.BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def answers() -> bool:
        if process.poll() is not None:
            pytest.fail(f"daphne exited with {process.returncode}")
        urllib.request.urlopen(f"http://127.0.0.1:{PORT}/accounts/login/", timeout=2)
        return True

    eventually(answers, 30, interval=0.2, what="daphne answering")
    yield process
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.mark.slow  # starts Squirrel's own processes, as do the other slow tests here
def test_daphne_stays_bounded_under_anonymous_60_mb_uploads(daphne):
    body, content_type = _multipart(60 * MIB)
    before = _rss_mb(daphne.pid)
    peak = before
    results: list = []
    threads = [threading.Thread(target=_send, args=(body, content_type, results)) for _ in range(3)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        peak = max(peak, _rss_mb(daphne.pid))
        time.sleep(0.05)

    # Refused from the headers: the connection closes while the client is still sending.
    assert len(results) == 3 and all(result in (413, "BrokenPipeError", "ConnectionResetError") for result in results)
    # Before: 458 -> 2,164 MB (Twisted parsed each multipart body in memory, and Django kept it).
    assert peak - before < 50, f"RSS {before:.0f} -> {peak:.0f} MB"
    assert daphne.poll() is None


@pytest.mark.slow
def test_a_client_that_waits_for_100_continue_is_told_413_and_sends_nothing(daphne):
    with socket.create_connection(("127.0.0.1", PORT), timeout=10) as client:
        client.sendall(
            b"POST /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; "
            b"boundary=b\r\nContent-Length: 62914560\r\nExpect: 100-continue\r\n\r\n"
        )
        answer = client.recv(4096)

    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"larger than 2621440 bytes" in answer


@pytest.mark.slow
def test_the_web_process_still_serves_bodies_within_the_limit(daphne):
    connection = HTTPConnection("127.0.0.1", PORT, timeout=10)
    connection.request("POST", "/api/v1/pvs/bulk/", body=b"[]", headers={"Content-Type": "application/json"})

    assert connection.getresponse().status == 401  # through to the API, which wants a token
