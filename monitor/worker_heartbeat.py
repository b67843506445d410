"""Celery workers announce themselves in Redis every few seconds (monitor.live owns the keys).

The health endpoint counts live workers from these heartbeats; asking the workers instead
(`celery inspect ping`) is a broadcast that waits a second for replies, too slow for a probe.
A heartbeat says that the worker process runs and reaches Redis: a thread writes it, so a worker
busy with a long task (solo pool) still beats.

Under systemd (Type=notify, WatchdogSec) the same thread tells the watchdog the worker is alive,
and the worker says READY=1 once it consumes (squirrel_site.sd_notify).
"""

from __future__ import annotations

import logging
import os
import threading
import time

import redis
from celery import bootsteps, signals
from celery.worker import state

from monitor import live
from squirrel_site.sd_notify import notify

log = logging.getLogger(__name__)

# A worker that stops beating (killed, frozen, cut off from Redis) is gone after TTL seconds.
INTERVAL = 2.0
TTL = 10.0


class WorkerHeartbeat:
    """Writes one worker process's heartbeat every `interval` seconds from a daemon thread."""

    def __init__(
        self, name: str, concurrency: int, *, interval: float = INTERVAL, ttl: float = TTL, healthy=lambda: True
    ):
        self.name, self.concurrency, self.interval, self.ttl = name, concurrency, interval, ttl
        self.healthy = healthy  # the worker is running (not stopping): what systemd's watchdog hears
        # Several workers on one host may share a node name; the pid tells them apart.
        self.id = f"{name}/{os.getpid()}"
        self.started = time.time()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> bool:
        """Write the heartbeat once; False (and a warning) if Redis cannot be reached."""
        stats = {
            "name": self.name,
            "pid": os.getpid(),
            "concurrency": self.concurrency,
            "active": len(state.active_requests),
            "started": self.started,
        }
        try:
            live.write_worker_heartbeat(live.redis_client(), self.id, stats, self.ttl)
        except redis.RedisError as exc:
            log.warning("Worker heartbeat not written: %s", exc)
            return False
        return True

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="squirrel-worker-heartbeat", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.beat()
            if self.healthy():
                notify("WATCHDOG=1")
            self._stop.wait(self.interval)

    def stop(self) -> None:
        """Stop beating and remove the heartbeat, so a worker that shuts down is not counted."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.interval + 1.0)
            self._thread = None
        try:
            live.delete_worker_heartbeat(live.redis_client(), self.id)
        except redis.RedisError as exc:
            log.warning("Worker heartbeat not removed (it expires in %g s): %s", self.ttl, exc)


class WorkerHeartbeatStep(bootsteps.StartStopStep):
    """The worker bootstep that runs a WorkerHeartbeat (squirrel_site/celery.py adds it)."""

    def create(self, worker):
        # A worker reconnecting to the broker counts as healthy: a restart cannot bring Redis back
        # and would end the tasks it is running. A worker whose main loop stopped does not.
        return WorkerHeartbeat(
            worker.hostname, worker.concurrency, healthy=lambda: worker.blueprint.state == bootsteps.RUN
        )


@signals.worker_ready.connect
def _tell_systemd_ready(**kwargs) -> None:
    """The worker consumes tasks: READY=1 for a Type=notify service (nothing outside systemd)."""
    notify("READY=1")
