from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import Job, JobStatus, JobType
from jobs.runner import JobExpired, JobFailure, run_job
from squirrel_site.testing.jobs import close_and_wait_for_release


@pytest.fixture
def job(db, admin_user):
    return Job.objects.create(type=JobType.SNAPSHOT, created_by=admin_user)


def test_a_successful_handler_finishes_the_job_with_its_result(job):
    def handler(job, progress):
        progress(50, "halfway")
        return 42

    run_job(job.id, handler)
    job.refresh_from_db()
    assert (job.status, job.progress, job.result_id) == (JobStatus.SUCCEEDED, 100, 42)


def test_a_job_failure_keeps_its_message_for_the_operator(job):
    def handler(job, progress):
        raise JobFailure("No PVs selected.")

    run_job(job.id, handler)
    job.refresh_from_db()
    assert (job.status, job.error) == (JobStatus.FAILED, "No PVs selected.")


def test_an_unexpected_error_is_recorded_with_its_type(job):
    def handler(job, progress):
        raise ValueError("bad value")

    run_job(job.id, handler)
    job.refresh_from_db()
    assert job.error == "ValueError: bad value"


def test_a_pending_job_delivered_after_its_deadline_expires_without_running(job):
    Job.objects.filter(pk=job.pk).update(start_by=timezone.now() - timedelta(seconds=1))
    calls = []
    run_job(job.id, lambda job, progress: calls.append(job.pk))
    job.refresh_from_db()
    assert (job.status, calls) == (JobStatus.EXPIRED, [])
    assert job.message.startswith("Expired: not started within")


def test_a_handler_that_finds_its_job_expired_ends_it_expired(job):
    def handler(job, progress):
        raise JobExpired

    run_job(job.id, handler)
    job.refresh_from_db()
    assert (job.status, job.error) == (JobStatus.EXPIRED, "")


def test_a_duplicate_delivery_of_a_finished_job_does_not_run_it_again(job):
    calls = []
    run_job(job.id, lambda job, progress: calls.append(1))
    run_job(job.id, lambda job, progress: calls.append(1))
    assert calls == [1]


def test_a_deleted_job_is_skipped(db):
    run_job(999_999, lambda job, progress: pytest.fail("must not run"))


def test_progress_stays_below_100_until_the_job_finishes(job):
    seen = []

    def handler(job, progress):
        progress(100, "almost")
        seen.append(Job.objects.get(pk=job.pk).progress)

    run_job(job.id, handler)
    assert seen == [99]


def test_a_duplicate_delivery_steps_aside_while_another_worker_runs_the_job(job):
    from jobs.runner import JobRunningElsewhere

    job.start()

    def busy(job, progress):
        raise JobRunningElsewhere

    run_job(job.id, busy)
    job.refresh_from_db()
    assert (job.status, job.error) == (JobStatus.RUNNING, "")


def test_a_delivery_while_another_connection_holds_the_job_does_not_run_it(job, transactional_db):
    import psycopg
    from django.conf import settings

    from jobs.runner import _LOCK_NAMESPACE

    # Another worker: its own database session holding the job's lock.
    db = settings.DATABASES["default"]
    other = psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"], autocommit=True)
    try:
        other.execute("SELECT pg_advisory_lock(%s::int, %s::int)", [_LOCK_NAMESPACE, job.id])
        calls = []
        run_job(job.id, lambda job, progress: calls.append(job.id))
        job.refresh_from_db()
        assert (calls, job.status, job.retry_count) == ([], JobStatus.PENDING, 0)
    finally:
        close_and_wait_for_release(other, job.id)  # the other worker dies: its lock goes with its connection
    run_job(job.id, lambda job, progress: 7)
    job.refresh_from_db()
    assert (job.status, job.result_id) == (JobStatus.SUCCEEDED, 7)


def test_a_redelivery_after_the_result_was_saved_finishes_without_running_again(job):
    job.start()  # the first worker started, saved its result with the work, then died
    Job.objects.filter(pk=job.pk).update(result_id=41)
    calls = []
    run_job(job.id, lambda job, progress: calls.append(job.id))
    job.refresh_from_db()
    assert (calls, job.status, job.result_id, job.retry_count) == ([], JobStatus.SUCCEEDED, 41, 1)
