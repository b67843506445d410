"""Jobs whose Celery message was lost are sent again (snapshots.jobs.requeue_lost_jobs)."""

from datetime import timedelta

import psycopg
import pytest
from django.conf import settings
from django.utils import timezone

from jobs.models import Job, JobStatus, JobType
from jobs.runner import _LOCK_NAMESPACE
from jobs.tests.test_runner import close_and_wait_for_release
from snapshots import jobs


@pytest.fixture
def sent(monkeypatch):
    """The task ids sent, instead of Celery messages (the broker is not what is tested here)."""
    messages = []

    class Task:
        def __init__(self, job_type):
            self.job_type = job_type

        def delay(self, job_id):
            messages.append((self.job_type, job_id))

    monkeypatch.setattr(jobs, "_task", Task)
    return messages


def make_job(user, status, age_minutes, job_type=JobType.SNAPSHOT):
    job = Job.objects.create(type=job_type, created_by=user, status=status)
    Job.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(minutes=age_minutes))
    return job


def test_old_pending_and_orphaned_running_jobs_are_sent_again_once(transactional_db, admin_user, sent):
    lost = make_job(admin_user, JobStatus.PENDING, 5)
    orphan = make_job(admin_user, JobStatus.RUNNING, 5, JobType.RESTORE)
    recent = make_job(admin_user, JobStatus.PENDING, 0.5)  # its message is probably on its way
    make_job(admin_user, JobStatus.SUCCEEDED, 60)
    held = make_job(admin_user, JobStatus.RUNNING, 5)
    db = settings.DATABASES["default"]
    runner = psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"], autocommit=True)
    try:
        runner.execute("SELECT pg_advisory_lock(%s::int, %s::int)", [_LOCK_NAMESPACE, held.pk])  # a live runner
        assert sorted(jobs.requeue_lost_jobs()) == sorted([lost.pk, orphan.pk])
        assert sorted(sent) == sorted([(JobType.SNAPSHOT, lost.pk), (JobType.RESTORE, orphan.pk)])
        assert jobs.requeue_lost_jobs() == []  # touched: not again before LOST_AFTER
    finally:
        close_and_wait_for_release(runner, held.pk)
    later = timezone.now() + jobs.LOST_AFTER + timedelta(seconds=1)
    assert sorted(jobs.requeue_lost_jobs(now=later)) == sorted([lost.pk, orphan.pk, recent.pk, held.pk])
