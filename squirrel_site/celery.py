"""The Celery application; workers run EPICS work with the threads or solo pool, never prefork."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "squirrel_site.settings")

app = Celery("squirrel")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Each worker announces itself in Redis, where the health endpoint counts the live ones.
app.steps["worker"].add("monitor.worker_heartbeat:WorkerHeartbeatStep")
# Each worker relays the job outbox: sends jobs not sent yet, and again those lost or orphaned.
app.steps["worker"].add("jobs.outbox:OutboxRelayStep")
