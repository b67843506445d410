import pytest

from jobs.models import Job, JobStatus, JobType
from jobs.runner import JobFailure, run_job


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
