"""The job outbox (jobs.outbox): a job is recorded only if the broker answers, sent once its
transaction commits, and sent (again) by the relay when it was not, was lost, or was orphaned.
Against the test PostgreSQL and the test Redis, which is the Celery broker here."""

import ast
import json
import threading
from datetime import timedelta

import psycopg
import pytest
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from jobs import outbox
from jobs.models import Job, JobStatus, JobType
from jobs.runner import _LOCK_NAMESPACE
from squirrel_site.errors import ServiceUnavailable
from squirrel_site.testing.jobs import close_and_wait_for_release


def queued(redis_db) -> list[tuple[str, int]]:
    """(task name, job id) of every message waiting in the broker's default queue."""
    messages = [json.loads(raw)["headers"] for raw in redis_db.lrange("celery", 0, -1)]
    return sorted((headers["task"], ast.literal_eval(headers["argsrepr"])[0]) for headers in messages)


def make_job(user, status=JobStatus.PENDING, job_type=JobType.SNAPSHOT, **fields) -> Job:
    return Job.objects.create(type=job_type, created_by=user, status=status, **fields)


def other_connection():
    """A second session on the test database (another worker)."""
    db = settings.DATABASES["default"]
    return psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"], autocommit=True)


def test_no_job_is_created_when_the_broker_does_not_answer(db, admin_user, broker_down):
    with pytest.raises(ServiceUnavailable, match="nothing was recorded"):
        outbox.enqueue(JobType.SNAPSHOT, user=admin_user, data={"title": "t"})
    assert not Job.objects.exists()


def test_a_job_is_sent_once_its_transaction_commits(transactional_db, admin_user, redis_db):
    with transaction.atomic():
        job = outbox.enqueue(JobType.SNAPSHOT, user=admin_user, data={"title": "t"})
        assert queued(redis_db) == []
    assert queued(redis_db) == [("snapshots.take_snapshot", job.pk)]
    job.refresh_from_db()
    assert job.dispatched_at is not None


def test_only_restores_get_a_start_deadline(db, admin_user, redis_db, settings):
    settings.RESTORE_START_DEADLINE = 45.0
    restore = outbox.enqueue(JobType.RESTORE, user=admin_user, data={"preview": 1})
    snapshot = outbox.enqueue(JobType.SNAPSHOT, user=admin_user, data={"title": "t"})
    assert (restore.start_by - restore.created_at).total_seconds() == pytest.approx(45.0, abs=1.0)
    assert snapshot.start_by is None


def test_the_relay_sends_jobs_not_sent_yet_and_marks_them(transactional_db, admin_user, redis_db):
    unsent = [make_job(admin_user), make_job(admin_user, job_type=JobType.RESTORE)]
    make_job(admin_user, dispatched_at=timezone.now())
    make_job(admin_user, status=JobStatus.SUCCEEDED)
    assert outbox.send_undispatched() == [job.pk for job in unsent]
    assert queued(redis_db) == [("snapshots.restore", unsent[1].pk), ("snapshots.take_snapshot", unsent[0].pk)]
    assert not Job.objects.filter(pk__in=[job.pk for job in unsent], dispatched_at=None).exists()
    assert outbox.send_undispatched() == []


def test_nothing_is_marked_sent_while_the_broker_is_down(transactional_db, admin_user, broker_down):
    job = make_job(admin_user)
    assert outbox.send_undispatched() == []
    job.refresh_from_db()
    assert job.dispatched_at is None


def test_a_job_another_sender_holds_is_left_to_it(transactional_db, admin_user, redis_db):
    held, free = make_job(admin_user), make_job(admin_user)
    sender = other_connection()
    try:
        with sender.transaction():
            sender.execute("SELECT 1 FROM jobs_job WHERE id = %s FOR UPDATE", [held.pk])
            assert outbox.send_undispatched() == [free.pk]
        assert outbox.send_undispatched() == [held.pk]
    finally:
        sender.close()
    assert queued(redis_db) == sorted(("snapshots.take_snapshot", job.pk) for job in (held, free))


def test_relays_sending_at_once_never_send_one_job_twice(transactional_db, admin_user, redis_db):
    jobs = [make_job(admin_user) for _ in range(120)]
    sent: list[list[int]] = [[] for _ in range(4)]

    def relay(mine: list[int]) -> None:
        try:
            while batch := outbox.send_undispatched():
                mine.extend(batch)
        finally:
            connection.close()

    threads = [threading.Thread(target=relay, args=(mine,)) for mine in sent]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    every = [job_id for mine in sent for job_id in mine]
    assert sorted(every) == [job.pk for job in jobs]  # each once
    assert [job_id for _, job_id in queued(redis_db)] == [job.pk for job in jobs]


def test_a_pending_job_past_its_deadline_expires_without_any_delivery(db, admin_user):
    job = make_job(admin_user, job_type=JobType.RESTORE)
    Job.objects.filter(pk=job.pk).update(start_by=job.created_at + timedelta(seconds=60))
    make_job(admin_user)  # no deadline
    assert outbox.expire_overdue(now=job.created_at + timedelta(seconds=59)) == []
    assert outbox.expire_overdue(now=job.created_at + timedelta(seconds=61)) == [job.pk]
    job.refresh_from_db()
    assert job.status == JobStatus.EXPIRED and job.finished_at is not None
    assert job.message == "Expired: not started within 60 s of the request; nothing was written. Make a new preview."


def test_orphaned_running_jobs_and_lost_pending_ones_are_sent_again_once_per_run(
    transactional_db, admin_user, redis_db
):
    now = timezone.now()
    orphan = make_job(admin_user, JobStatus.RUNNING, JobType.RESTORE, dispatched_at=now - timedelta(seconds=5))
    held = make_job(admin_user, JobStatus.RUNNING)
    lost = make_job(admin_user, dispatched_at=now - outbox.RESEND_AFTER - timedelta(seconds=1))
    make_job(admin_user, dispatched_at=now - timedelta(seconds=5))  # its message is probably on its way
    Job.objects.filter(pk__in=[orphan.pk, held.pk]).update(updated_at=now)  # a runner started them
    runner = other_connection()
    try:
        runner.execute("SELECT pg_advisory_lock(%s::int, %s::int)", [_LOCK_NAMESPACE, held.pk])  # alive
        assert sorted(outbox.resend_lost(now)) == sorted([orphan.pk, lost.pk])
        assert outbox.resend_lost(now) == []  # not again until a runner touches it
    finally:
        close_and_wait_for_release(runner, held.pk)
    assert outbox.resend_lost(now) == [held.pk]  # its runner died
    Job.objects.filter(pk=orphan.pk).update(updated_at=now + timedelta(seconds=1))  # run again, died again
    assert outbox.resend_lost(now + timedelta(seconds=2)) == [orphan.pk]
    assert sorted(job_id for _, job_id in queued(redis_db)) == sorted([orphan.pk, orphan.pk, lost.pk, held.pk])
