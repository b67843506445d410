"""The transactional outbox: the Job row is the message, and a relay in every worker sends it.

A request that creates a job first checks that the broker answers, so that a request answered
with an error records nothing (the 503 rolls its transaction back), then creates the Job in its
transaction. After the commit it sends the message at once (the fast path); whatever was not
sent (the broker went away in between, the process died) is sent by the relay, a thread in every
worker (OutboxRelayStep) that every POLL_INTERVAL seconds:

- expires pending jobs past their start deadline (Job.start_by): no delivery will run them;
- sends the messages of pending jobs not yet sent (Job.dispatched_at is null);
- every ORPHAN_INTERVAL seconds, sends again the messages of running jobs no runner holds (the
  runner's advisory lock, jobs.runner.job_lock, goes with its connection: a killed worker, a lost
  database session) and of pending jobs sent RESEND_AFTER ago and still not started (Redis
  restarted empty).

Each sender takes the rows it sends with SELECT ... FOR UPDATE SKIP LOCKED, so the fast path and
the relays of several workers never send one job twice in one round. A duplicate from a later
round is harmless: jobs.runner runs a job once however often it is delivered.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta
from functools import partial

import redis
from celery import bootsteps
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from jobs.celery_app import app
from jobs.models import InvalidJobTransition, Job, JobStatus
from jobs.progress import push_state
from jobs.registry import runner_for
from jobs.runner import job_lock
from squirrel_site.errors import ServiceUnavailable

log = logging.getLogger(__name__)

# A dead or hung broker costs a request or the relay at most about this long (seconds).
BROKER_TIMEOUT = 1.0
# kombu would otherwise retry a refused connection for seconds: the relay's next round is the retry.
_SEND_OPTIONS = {"socket_connect_timeout": BROKER_TIMEOUT, "socket_timeout": BROKER_TIMEOUT, "max_retries": 0}

POLL_INTERVAL = 1.0
ORPHAN_INTERVAL = 3.0
# A pending job sent this long ago and still not started may have lost its message: send it again.
RESEND_AFTER = timedelta(seconds=30)
# Rows taken per statement; the rest wait for the next round (a second).
BATCH = 200


def check_broker() -> None:
    """Raise ServiceUnavailable unless the broker answers a PING within BROKER_TIMEOUT."""
    client = redis.Redis.from_url(
        settings.CELERY_BROKER_URL, socket_connect_timeout=BROKER_TIMEOUT, socket_timeout=BROKER_TIMEOUT
    )
    try:
        client.ping()
    except redis.RedisError as exc:
        log.warning("The broker did not answer: %s", exc)
        raise ServiceUnavailable(
            "The job queue (Redis) is unreachable; nothing was recorded. Try again shortly."
        ) from None
    finally:
        client.close()


def enqueue(job_type: str, *, user, data: dict) -> Job:
    """Create a Job in the caller's transaction; its message is sent once that commits.

    ServiceUnavailable (before anything is written) if the broker does not answer: the caller's
    transaction rolls back and the client is told to try again.
    """
    check_broker()
    deadline = runner_for(job_type).start_deadline()
    start_by = timezone.now() + timedelta(seconds=deadline) if deadline is not None else None
    job = Job.objects.create(type=job_type, created_by=user, data=data, start_by=start_by)
    transaction.on_commit(partial(send_undispatched, [job.pk]), robust=True)
    return job


def send_undispatched(ids: list[int] | None = None, now: datetime | None = None) -> list[int]:
    """Send the messages of pending jobs not sent yet (only of `ids` if given); the ids sent."""
    rows = Job.objects.filter(status=JobStatus.PENDING, dispatched_at=None)
    if ids is not None:
        rows = rows.filter(pk__in=ids)
    return _send(rows, now or timezone.now())


def resend_lost(now: datetime | None = None) -> list[int]:
    """Send again the messages of running jobs no runner holds, and of pending jobs sent
    RESEND_AFTER ago and not started; the ids sent.

    An orphan is sent again once per run that touched it (a runner's start or progress moves
    updated_at past dispatched_at), or RESEND_AFTER after its last message.
    """
    now = now or timezone.now()
    pending = _send(Job.objects.filter(status=JobStatus.PENDING, dispatched_at__lt=now - RESEND_AFTER), now)
    unsent_since_run = Q(dispatched_at=None) | Q(dispatched_at__lt=F("updated_at"))
    running = Job.objects.filter(status=JobStatus.RUNNING).filter(
        unsent_since_run | Q(dispatched_at__lt=now - RESEND_AFTER)
    )
    orphans = _send(running, now, keep=_orphaned)
    if pending or orphans:
        log.warning("Sent again the messages of pending jobs %s and orphaned jobs %s", pending, orphans)
    return pending + orphans


def expire_overdue(now: datetime | None = None) -> list[int]:
    """End the pending jobs past their start deadline (status expired); their ids."""
    expired = []
    for job in Job.objects.filter(status=JobStatus.PENDING, start_by__lt=now or timezone.now()).order_by("pk")[:BATCH]:
        try:
            job.expire()
        except InvalidJobTransition:
            continue  # a worker started it a moment ago: within its deadline
        push_state(job)
        expired.append(job.pk)
    if expired:
        log.warning("Jobs %s expired: not started before their deadline", expired)
    return expired


def _orphaned(job_id: int) -> bool:
    """True if no runner holds job `job_id` (its worker died or lost its database session)."""
    with job_lock(job_id) as free:
        return free


def _send(rows: QuerySet, now: datetime, keep=None) -> list[int]:
    """Send one message for each job of `rows` (that `keep` accepts), holding the rows so that no
    other sender sends them meanwhile, and record when; the ids sent."""
    with transaction.atomic():
        jobs = list(rows.select_for_update(skip_locked=True).order_by("pk").values_list("pk", "type")[:BATCH])
        jobs = [(pk, job_type) for pk, job_type in jobs if keep is None or keep(pk)]
        sent = _publish(jobs)
        if sent:
            Job.objects.filter(pk__in=sent).update(dispatched_at=now)
    return sent


def _publish(jobs: list[tuple[int, str]]) -> list[int]:
    """Send the task message of each (id, type), the task its runner names (jobs.registry); the
    ids whose message reached the broker."""
    sent: list[int] = []
    if not jobs:
        return sent
    try:
        with app.connection_for_write(transport_options=_SEND_OPTIONS) as broker:
            for job_id, job_type in jobs:
                app.send_task(runner_for(job_type).task_name, args=[job_id], connection=broker, retry=False)
                sent.append(job_id)
    except Exception as exc:  # noqa: BLE001 - whatever the broker client raises, the relay sends later
        log.warning("Job messages not sent (the relay sends them when the broker answers): %s", exc)
    return sent


class OutboxRelay:
    """Runs the relay's rounds from a daemon thread of one worker process."""

    def __init__(self, *, interval: float = POLL_INTERVAL, orphan_interval: float = ORPHAN_INTERVAL):
        self.interval, self.orphan_interval = interval, orphan_interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_orphan_check = 0.0

    def run_once(self, monotonic: float) -> None:
        """One round: expire, send what was not sent, and (every orphan_interval) what was lost."""
        now = timezone.now()
        expire_overdue(now)
        send_undispatched(now=now)
        if monotonic >= self._next_orphan_check:
            self._next_orphan_check = monotonic + self.orphan_interval
            resend_lost(now)

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="squirrel-outbox-relay", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once(time.monotonic())
            except Exception as exc:  # noqa: BLE001 - PostgreSQL away: the next round tries again
                log.warning("Outbox relay round failed: %s", exc)
                connection.close()  # a broken connection is opened anew next round
            self._stop.wait(self.interval)
        connection.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.interval + 2 * BROKER_TIMEOUT + 5.0)
            self._thread = None


class OutboxRelayStep(bootsteps.StartStopStep):
    """The worker bootstep that runs an OutboxRelay (squirrel_site/celery.py adds it)."""

    def create(self, worker):
        return OutboxRelay()
