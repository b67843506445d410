"""Every WebSocket payload about jobs, in one place."""

from typing import TypedDict

from jobs.models import Job


class JobStatePayload(TypedDict):
    """What a client following a job receives: the whole state, each time it changes."""

    type: str  # "job.state"
    id: int
    job_type: str
    status: str
    progress: int
    message: str
    result_id: int | None
    error: str
    retry_count: int


def job_group(job_id: int) -> str:
    """The channel-layer group of one job's followers."""
    return f"job.{job_id}"


def job_state(job: Job) -> JobStatePayload:
    return JobStatePayload(
        type="job.state",
        id=job.id,
        job_type=job.type,
        status=job.status,
        progress=job.progress,
        message=job.message,
        result_id=job.result_id,
        error=job.error,
        retry_count=job.retry_count,
    )
