import pytest

from jobs.models import InvalidJobTransition, Job, JobStatus, JobType


@pytest.fixture
def job(db):
    return Job.objects.create(type=JobType.SNAPSHOT, data={"title": "t"})


def test_job_runs_and_finishes_with_its_result(job):
    job.start()
    job.set_progress(40, "reading")
    job.finish(result_id=7)
    job.refresh_from_db()
    assert (job.status, job.progress, job.result_id) == (JobStatus.SUCCEEDED, 100, 7)
    assert job.started_at <= job.finished_at


def test_progress_never_goes_backwards(job):
    job.start()
    job.set_progress(60)
    job.set_progress(30)
    job.refresh_from_db()
    assert job.progress == 60


def test_progress_outside_0_to_100_is_refused(job):
    job.start()
    with pytest.raises(ValueError):
        job.set_progress(101)


def test_a_finished_job_cannot_be_started_again(job):
    job.start()
    job.finish()
    with pytest.raises(InvalidJobTransition):
        job.start()


def test_a_stale_copy_cannot_finish_a_failed_job(job):
    job.start()
    stale = Job.objects.get(pk=job.pk)
    job.fail("IOC gone")
    with pytest.raises(InvalidJobTransition):
        stale.finish()
    job.refresh_from_db()
    assert (job.status, job.error) == (JobStatus.FAILED, "IOC gone")


def test_starting_a_running_job_again_counts_a_retry(job):
    job.start()
    Job.objects.get(pk=job.pk).start()
    job.refresh_from_db()
    assert (job.status, job.retry_count) == (JobStatus.RUNNING, 1)


def test_progress_on_a_pending_job_is_refused(job):
    with pytest.raises(InvalidJobTransition):
        job.set_progress(10)


def test_a_job_is_named_by_its_own_number(db):
    restore = Job.objects.create(type=JobType.RESTORE, data={"preview": 1})
    assert str(restore) == f"Job #{restore.pk}: Restore (pending)"
