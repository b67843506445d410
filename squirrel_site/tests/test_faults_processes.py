"""Every process outlives Redis and PostgreSQL outages and recovers by itself.

Each test runs the real processes (squirrel_site.testing) on a private PostgreSQL and Redis that
it kills or stops, and asks afterwards what an operator would: are the processes alive, does a
new job run, does health answer 200 with a live worker and a fresh monitor, does beat send.
The last test checks what systemd's watchdog hears from the real worker and monitor.
"""

import socket
import time

import pytest

from squirrel_site.testing import eventually
from squirrel_site.testing.fixtures import received

pytestmark = [pytest.mark.fault, pytest.mark.worker, pytest.mark.ioc]

OUTAGE = 30.0  # seconds PostgreSQL or Redis stays down
RECOVERY = 30.0  # seconds every process has to work again once it is back
BEAT_EVERY = 2  # seconds between the tasks beat sends in these tests


def start_everything(squirrel) -> list[str]:
    """web, worker, beat (sending a task every BEAT_EVERY s) and the monitor; 20 setpoint addresses."""
    squirrel.schedule_every(BEAT_EVERY)
    squirrel.start()
    return squirrel.addresses(20)


def assert_everything_works(squirrel, addresses, since: float) -> None:
    """Every process alive and doing its work again (beat: sends after the log offset `since`)."""
    assert squirrel.dead() == []

    def healthy():
        response = squirrel.get("/api/v1/health/")
        body = response.json()
        return response.status_code == 200 and body["workers"]["count"] == 1 and body["monitor"]["status"] == "ok"

    eventually(healthy, RECOVERY, what="health 200 with the worker and the monitor ok")
    heartbeat = squirrel.monitor_heartbeat()
    assert heartbeat["synced"] and time.time() - heartbeat["time"] < 5
    # The monitor wrote every value again (Redis may have come back empty).
    assert squirrel.redis.client().hlen("squirrel:live:values") >= heartbeat["addresses"]
    job_id = squirrel.take_snapshot(addresses, "after the outage")
    assert squirrel.wait_for_job(job_id, RECOVERY)["status"] == "succeeded"
    eventually(lambda: "Sending due task" in squirrel["beat"].output()[since:], RECOVERY, what="beat sending")
    assert squirrel.dead() == []


def test_every_process_survives_redis_killed_and_restarted_empty_while_the_worker_runs_a_job(squirrel):
    addresses = start_everything(squirrel)
    job_id = squirrel.take_snapshot(addresses)
    eventually(lambda: squirrel.job(job_id)["status"] == "running", 30, interval=0.02, what="job running")

    squirrel.redis.kill()
    time.sleep(OUTAGE)
    assert squirrel.dead() == []
    squirrel.redis.start()
    beat_log = len(squirrel["beat"].output())

    assert squirrel.wait_for_job(job_id, RECOVERY)["status"] == "succeeded"
    assert_everything_works(squirrel, addresses, beat_log)


def test_every_process_survives_postgresql_stopped_for_30_s(squirrel):
    addresses = start_everything(squirrel)

    squirrel.postgres.stop()
    time.sleep(OUTAGE)
    assert squirrel.dead() == []
    squirrel.postgres.start()
    beat_log = len(squirrel["beat"].output())

    assert_everything_works(squirrel, addresses, beat_log)


def test_a_standby_monitor_takes_over_when_the_leader_is_killed(squirrel):
    squirrel.start("monitor", "monitor-standby")
    pids = {squirrel[name].process.pid: name for name in ("monitor", "monitor-standby")}
    leader = pids[int(squirrel.monitor_heartbeat()["owner"].rsplit(":", 1)[1])]
    standby = next(name for name in pids.values() if name != leader)

    squirrel[leader].kill()

    def standby_leads():
        heartbeat = squirrel.monitor_heartbeat()
        return heartbeat["owner"].endswith(f":{squirrel[standby].process.pid}") and heartbeat["synced"]

    eventually(standby_leads, 15, what="the standby leading with every value")


def test_the_worker_and_the_monitor_tell_systemd_they_are_ready_then_alive(squirrel, tmp_path):
    sockets = {}
    for name in ("worker", "monitor"):
        sockets[name] = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sockets[name].bind(str(tmp_path / f"{name}.notify"))
        squirrel.env["NOTIFY_SOCKET"] = str(tmp_path / f"{name}.notify")
        squirrel.start(name)  # each process copies the environment as it starts
    for name, sock in sockets.items():
        with sock:
            messages = []

            def two_watchdog_pings(sock=sock, messages=messages) -> bool:
                messages.extend(received(sock))
                return messages.count("WATCHDOG=1") >= 2

            eventually(two_watchdog_pings, 15, what=name)
            assert "READY=1" in messages, (name, messages)
