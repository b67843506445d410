"""sd_notify against a real unix datagram socket, as systemd listens."""

import socket

from squirrel_site.sd_notify import Watchdog, notify
from squirrel_site.testing.fixtures import received


def test_notify_sends_the_state_to_the_socket(systemd_socket):
    assert notify("READY=1")
    assert systemd_socket.recv(256) == b"READY=1"


def test_notify_without_notify_socket_does_nothing(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert not notify("READY=1")


def test_notify_reaches_an_abstract_socket(monkeypatch):
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0squirrel-test-notify")
        sock.settimeout(2)
        monkeypatch.setenv("NOTIFY_SOCKET", "@squirrel-test-notify")
        notify("WATCHDOG=1")
        assert sock.recv(256) == b"WATCHDOG=1"


def test_watchdog_pings_at_most_once_per_interval(systemd_socket):
    watchdog = Watchdog(interval=60)
    for _ in range(5):
        watchdog.alive()
    assert received(systemd_socket) == ["WATCHDOG=1"]
