"""The job types: one JobRunner class per JobType, registered by the app that owns the work.

The jobs app runs jobs without knowing what they do: the outbox asks the registry which Celery
task sends a job and by when it must start, and that task runs the job through the runner
(jobs.runner.run_job). The apps that own the work register their runners in their
AppConfig.ready() (snapshots.apps), so this app imports no other.
"""

from typing import ClassVar

from jobs.models import Job
from jobs.progress import ProgressReporter


class JobRunner:
    """One type of job: how a worker runs it, which Celery task carries it, and its start deadline.

    A message may be delivered more than once (the outbox relay sends again what a dead worker
    held). jobs.runner.run_job makes most redeliveries harmless whatever the type: it runs a job
    once, leaves one that another worker holds to it, and finishes without running again a job
    whose result was saved. What is left (a redelivery of a job whose first run died before its
    result was saved) is the runner's to say, in its docstring: it starts over, or resumes.
    """

    # The JobType this runner runs.
    job_type: ClassVar[str]
    # The name of the Celery task that carries the job's id; it names queued messages, so it
    # outlives upgrades: change it only with a release note.
    task_name: ClassVar[str]

    @classmethod
    def start_deadline(cls) -> float | None:
        """Seconds within which a job of this type must start, or None (no deadline)."""
        return None

    @classmethod
    def run(cls, job: Job, progress: ProgressReporter) -> int | None:
        """Do the job's work with its parameters (job.data); the id of what it produced.

        Raise jobs.runner.JobFailure with a message for the operator, JobExpired if the job is
        past its deadline and nothing was done, JobRunningElsewhere if another delivery runs it.
        """
        raise NotImplementedError


_runners: dict[str, type[JobRunner]] = {}


def register(runner: type[JobRunner]) -> type[JobRunner]:
    """Make `runner` the runner of its job type (once per type); returns it."""
    existing = _runners.get(runner.job_type)
    if existing is not None and existing is not runner:
        raise ValueError(f"Job type {runner.job_type!r} already has a runner: {existing.__qualname__}")
    _runners[runner.job_type] = runner
    return runner


def runner_for(job_type: str) -> type[JobRunner]:
    """The runner registered for `job_type`; LookupError if no app registered one."""
    try:
        return _runners[job_type]
    except KeyError:
        raise LookupError(f"No runner is registered for job type {job_type!r}") from None
