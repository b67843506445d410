"""Running a Job: the shared body of every Celery task (load, start, call one service, record)."""

import logging
from collections.abc import Callable

from jobs.models import InvalidJobTransition, Job
from jobs.progress import ProgressReporter, push_state

log = logging.getLogger(__name__)

# A handler runs the job's service with the job's parameters and returns the id of the result.
JobHandler = Callable[[Job, ProgressReporter], int | None]


class JobFailure(Exception):
    """A failure whose message is meant for the operator as it is."""


class JobRunningElsewhere(Exception):
    """Another worker is running this job now (a duplicate delivery): leave the job to it."""


def run_job(job_id: int, handler: JobHandler) -> None:
    """Run job `job_id` through `handler`; a finished job (a duplicate delivery) is left alone."""
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        log.warning("Job %s does not exist (deleted before it ran)", job_id)
        return
    try:
        job.start()
    except InvalidJobTransition:
        log.info("Job %s is already %s; not running it again", job_id, job.status)
        return
    push_state(job)
    try:
        result_id = handler(job, ProgressReporter(job))
    except JobRunningElsewhere:
        log.info("Job %s is being run by another worker; this delivery steps aside", job_id)
        return
    except JobFailure as exc:
        job.fail(str(exc))
    except Exception as exc:  # noqa: BLE001 - record any failure on the job, readable
        log.exception("Job %s failed", job_id)
        job.fail(f"{type(exc).__name__}: {exc}")
    else:
        job.finish(result_id)
    push_state(job)
