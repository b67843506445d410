"""The Celery application of every process (jobs.celery_app), wired: the apps' tasks, and the
worker's steps. Workers run EPICS work with the threads or solo pool, never prefork."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "squirrel_site.settings")

from jobs.celery_app import app

app.autodiscover_tasks()
# Each worker announces itself in Redis, where the health endpoint counts the live ones.
app.steps["worker"].add("monitor.worker_heartbeat:WorkerHeartbeatStep")
# Each worker relays the job outbox: sends jobs not sent yet, and again those lost or orphaned.
app.steps["worker"].add("jobs.outbox:OutboxRelayStep")

__all__ = ["app"]
