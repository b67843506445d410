"""The job type registry (jobs.registry): one runner per JobType, registered by the apps."""

import pytest

from jobs.models import JobType
from jobs.registry import JobRunner, register, runner_for


class OtherSnapshotRunner(JobRunner):
    job_type = JobType.SNAPSHOT
    task_name = "tests.other_snapshot"


def test_every_job_type_has_a_runner_with_a_task():
    for job_type in JobType.values:
        runner = runner_for(job_type)
        assert runner.job_type == job_type
        assert runner.task_name


def test_a_second_runner_for_a_job_type_is_refused():
    with pytest.raises(ValueError, match="already has a runner"):
        register(OtherSnapshotRunner)
    assert runner_for(JobType.SNAPSHOT) is not OtherSnapshotRunner


def test_registering_a_runner_again_keeps_it():
    runner = runner_for(JobType.RESTORE)
    assert register(runner) is runner
    assert runner_for(JobType.RESTORE) is runner


def test_a_job_type_without_a_runner_is_a_lookup_error():
    with pytest.raises(LookupError, match="No runner is registered for job type 'cleanup'"):
        runner_for("cleanup")
