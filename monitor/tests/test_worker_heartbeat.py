"""The heartbeat Celery workers write to Redis (a real worker process: squirrel_site/tests/test_api_health.py)."""

import os
import time

from monitor import live
from monitor.worker_heartbeat import WorkerHeartbeat
from squirrel_site.testing import eventually
from squirrel_site.testing.fixtures import received


def wait_for(predicate, timeout: float = 5.0) -> None:
    eventually(predicate, timeout, interval=0.02)


def test_a_beat_records_the_worker_with_its_name_pid_and_concurrency(redis_db):
    heartbeat = WorkerHeartbeat("celery@host", 2)

    assert heartbeat.beat()

    (beat,) = live.read_worker_heartbeats(redis_db)
    assert (beat["id"], beat["name"], beat["pid"], beat["concurrency"], beat["active"]) == (
        f"celery@host/{os.getpid()}",
        "celery@host",
        os.getpid(),
        2,
        0,
    )


def test_a_started_heartbeat_beats_at_once_and_again_every_interval(redis_db):
    heartbeat = WorkerHeartbeat("celery@host", 1, interval=0.05)
    heartbeat.start()
    try:
        wait_for(lambda: live.read_worker_heartbeats(redis_db))
        first = live.read_worker_heartbeats(redis_db)[0]["written_at"]
        wait_for(lambda: live.read_worker_heartbeats(redis_db)[0]["written_at"] > first)
    finally:
        heartbeat.stop()


def test_stopping_removes_the_worker_at_once(redis_db):
    heartbeat = WorkerHeartbeat("celery@host", 1, interval=0.05)
    heartbeat.start()
    wait_for(lambda: live.read_worker_heartbeats(redis_db))

    heartbeat.stop()

    assert live.read_worker_heartbeats(redis_db) == []


def test_redis_down_is_a_warning_not_a_crash(settings, caplog):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    heartbeat = WorkerHeartbeat("celery@host", 1)

    assert not heartbeat.beat()
    heartbeat.stop()

    assert [r.levelname for r in caplog.records] == ["WARNING", "WARNING"]


def test_a_healthy_worker_pings_the_systemd_watchdog_with_each_beat(redis_db, systemd_socket):
    heartbeat = WorkerHeartbeat("celery@host", 1, interval=0.2)
    heartbeat.start()
    pings: list[str] = []
    try:
        # Collected across calls: `received` returns after a pause shorter than the beat interval.
        wait_for(lambda: pings.extend(received(systemd_socket, wait=0.05)) or pings.count("WATCHDOG=1") >= 2)
    finally:
        heartbeat.stop()


def test_a_stopping_worker_does_not_ping_the_watchdog(redis_db, systemd_socket):
    heartbeat = WorkerHeartbeat("celery@host", 1, interval=0.05, healthy=lambda: False)
    heartbeat.start()
    try:
        wait_for(lambda: len(live.read_worker_heartbeats(redis_db)) == 1)
        time.sleep(0.2)
        assert received(systemd_socket) == []
    finally:
        heartbeat.stop()
