"""Job state changes pushed to the job's WebSocket followers, at a bounded rate."""

import logging
import time

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from jobs.models import Job
from jobs.payloads import job_group, job_state

log = logging.getLogger(__name__)

# Followers see progress at most this often; a bulk job may report thousands of steps.
MIN_INTERVAL = 0.2


def push_state(job: Job) -> None:
    """Send the job's state to its followers; a channel-layer failure never fails the job."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(job_group(job.id), {"type": "job.state", "state": job_state(job)})
    except Exception as exc:  # noqa: BLE001 - the job's outcome must not depend on Redis pub/sub
        log.warning("Could not push the state of job %s: %s", job.id, exc)


class ProgressReporter:
    """A progress callback for services: records progress on the Job and pushes it, throttled."""

    def __init__(self, job: Job):
        self.job = job
        self._last_push = 0.0

    def __call__(self, percent: int, message: str = "") -> None:
        self.job.set_progress(max(0, min(int(percent), 99)), message)
        now = time.monotonic()
        if now - self._last_push >= MIN_INTERVAL:
            self._last_push = now
            push_state(self.job)
