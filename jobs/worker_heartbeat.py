"""Celery workers announce themselves in Redis every few seconds (monitor.live owns the keys).

The health endpoint counts live workers from these heartbeats; asking the workers instead
(`celery inspect ping`) is a broadcast that waits a second for replies, too slow for a probe.
A heartbeat says that the worker process runs and reaches Redis: a thread writes it, so a worker
busy with a long task (solo pool) still beats.
"""

from __future__ import annotations

import logging
import os
import threading
import time

import redis
from celery import bootsteps
from celery.worker import state

from monitor import live

log = logging.getLogger(__name__)

# A worker that stops beating (killed, frozen, cut off from Redis) is gone after TTL seconds.
INTERVAL = 2.0
TTL = 10.0


class WorkerHeartbeat:
    """Writes one worker process's heartbeat every `interval` seconds from a daemon thread."""

    def __init__(self, name: str, concurrency: int, *, interval: float = INTERVAL, ttl: float = TTL):
        self.name, self.concurrency, self.interval, self.ttl = name, concurrency, interval, ttl
        # Several workers on one host may share a node name; the pid tells them apart.
        self.id = f"{name}/{os.getpid()}"
        self.started = time.time()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> bool:
        """Write the heartbeat once; False (and a warning) if Redis cannot be reached."""
        stats = {
            "name": self.name, "pid": os.getpid(), "concurrency": self.concurrency,
            "active": len(state.active_requests), "started": self.started,
        }  # fmt: skip
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
        return WorkerHeartbeat(worker.hostname, worker.concurrency)
