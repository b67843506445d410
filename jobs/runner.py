"""Running a Job: the shared body of every Celery task (load, start, call one service, record)."""

import logging
from collections.abc import Callable
from contextlib import contextmanager

from django.db import connection

from jobs.models import InvalidJobTransition, Job, JobStatus
from jobs.progress import ProgressReporter, push_state

log = logging.getLogger(__name__)

# A handler runs the job's service with the job's parameters and returns the id of the result.
JobHandler = Callable[[Job, ProgressReporter], int | None]


class JobFailure(Exception):
    """A failure whose message is meant for the operator as it is."""


class JobExpired(Exception):
    """The job is past its start deadline and its handler has done nothing: it ends expired."""


class JobRunningElsewhere(Exception):
    """Another worker is running this job now (a duplicate delivery): leave the job to it."""


# The first half of the two-key advisory lock a runner holds on its job ("JB").
_LOCK_NAMESPACE = 0x4A42


@contextmanager
def job_lock(job_id: int):
    """Yield True while this connection holds job `job_id`'s lock, False if another runner does.

    A session lock: a killed worker's connection closes and releases it, so a redelivery can run.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s::int, %s::int)", [_LOCK_NAMESPACE, job_id])
        held = cursor.fetchone()[0]
    try:
        yield held
    finally:
        if held and not connection.needs_rollback:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s::int, %s::int)", [_LOCK_NAMESPACE, job_id])


def run_job(job_id: int, handler: JobHandler) -> None:
    """Run job `job_id` through `handler`, once, however often its task is delivered.

    A finished job is left alone; a job another worker is running now is left to it (its lock is
    held); a pending job past its start deadline expires instead of starting; a job whose result
    was committed before its worker died is finished without running again (handlers record their
    result in the transaction that writes it, see take_snapshot).
    """
    with job_lock(job_id) as held:
        if not held:
            log.info("Job %s is being run by another worker; this delivery steps aside", job_id)
            return
        _run_locked(job_id, handler)


def _run_locked(job_id: int, handler: JobHandler) -> None:
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        log.warning("Job %s does not exist (deleted before it ran)", job_id)
        return
    if job.status == JobStatus.PENDING and job.is_overdue():
        _expire(job)
        return
    try:
        job.start()
    except InvalidJobTransition:
        log.info("Job %s is already %s; not running it again", job_id, job.status)
        return
    push_state(job)
    if job.result_id is not None:
        job.finish(job.result_id, "Its result was saved before the previous worker stopped.")
        push_state(job)
        return
    try:
        result_id = handler(job, ProgressReporter(job))
    except JobRunningElsewhere:
        log.info("Job %s is being run by another worker; this delivery steps aside", job_id)
        return
    except JobExpired:
        _expire(job)
        return
    except JobFailure as exc:
        job.fail(str(exc))
    except Exception as exc:
        log.exception("Job %s failed", job_id)
        job.fail(f"{type(exc).__name__}: {exc}")
    else:
        job.finish(result_id)
    push_state(job)


def _expire(job: Job) -> None:
    try:
        job.expire()
    except InvalidJobTransition:
        log.info("Job %s is already %s; not expiring it", job.pk, job.status)
        return
    log.warning("Job %s expired: not started before its deadline", job.pk)
    push_state(job)
