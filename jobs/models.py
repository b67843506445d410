"""Jobs: the durable record of every snapshot and restore run by a worker."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone


class JobType(models.TextChoices):
    SNAPSHOT = "snapshot", "Take snapshot"
    PREVIEW = "preview", "Restore preview"
    RESTORE = "restore", "Restore"


class JobStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    # Not started before its start_by: nothing was done, and no delivery will run it.
    EXPIRED = "expired", "Expired"


FINISHED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.EXPIRED)


class InvalidJobTransition(Exception):
    """Raised when a job is asked to move to a state its current state does not allow."""


class JobQuerySet(models.QuerySet):
    def visible_to(self, user):
        """The jobs `user` may follow (API, job page, /ws/jobs/): their own; every job for staff and
        for holders of jobs.see_every_job (the admin role)."""
        if user.is_staff or user.has_perm("jobs.see_every_job"):
            return self
        return self.filter(created_by=user)


class Job(models.Model):
    """A unit of background work; its state changes only through its own methods.

    Each change is one conditional UPDATE, so two workers that received the same Celery
    message (redelivery after a visibility timeout) cannot both move the job forward.
    """

    type = models.CharField(max_length=10, choices=JobType.choices)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.PENDING, db_index=True)
    progress = models.PositiveSmallIntegerField(default=0)
    message = models.CharField(max_length=200, blank=True, help_text="What the job is doing now.")
    data = models.JSONField(default=dict, blank=True, help_text="The job's parameters.")
    result_id = models.BigIntegerField(null=True, blank=True, help_text="Id of what the job produced.")
    key = models.CharField(
        max_length=200,
        unique=True,
        null=True,
        blank=True,
        help_text="Set by senders that may deliver one request twice (celery beat): one job per key.",
    )
    start_by = models.DateTimeField(
        null=True, blank=True, help_text="The job is never started after this (null: no deadline)."
    )
    dispatched_at = models.DateTimeField(
        null=True, blank=True, help_text="When a message for the job last reached the broker (null: not yet)."
    )
    retry_count = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="jobs")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        # Not view_*: the viewer role holds every view_ permission of this app.
        permissions = [("see_every_job", "Can see every user's jobs")]
        constraints = [
            models.CheckConstraint(condition=Q(progress__lte=100), name="job_progress_at_most_100"),
        ]

    def __str__(self) -> str:
        # "Job #n", never "Restore #n": a job's number is not the number of what it produces.
        return f"Job #{self.pk}: {self.get_type_display()} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED

    def comparison_query(self) -> dict | None:
        """For a snapshot job taken to be compared (snapshots.comparison.archive puts `compare` in
        its data), once it succeeded: the compare query ({"a": ..., "b": ...}); else None. The
        jobs app names the comparison's pages and API by URL name only."""
        compare = self.data.get("compare") if isinstance(self.data, dict) else None
        if self.type != JobType.SNAPSHOT or self.status != JobStatus.SUCCEEDED or not isinstance(compare, dict):
            return None
        if self.result_id is None:
            return None
        if compare.get("live") is True:
            return {"a": self.result_id, "b": "live"}
        a = compare.get("a")
        return {"a": a, "b": self.result_id} if isinstance(a, int) and not isinstance(a, bool) else None

    def is_overdue(self, now=None) -> bool:
        """True if the job has a start deadline and it has passed."""
        return self.start_by is not None and self.start_by < (now or timezone.now())

    def expiry_message(self) -> str:
        """What an expired job tells the operator: how long it had, and that nothing was done."""
        window = round((self.start_by - self.created_at).total_seconds()) if self.start_by else 0
        advice = "Make a new preview." if self.type == JobType.RESTORE else "Ask for it again."
        return f"Expired: not started within {window} s of the request; nothing was written. {advice}"

    def _transition(self, allowed_from: tuple[str, ...], **changes) -> None:
        changes["updated_at"] = timezone.now()
        updated = Job.objects.filter(pk=self.pk, status__in=allowed_from).update(**changes)
        if not updated:
            self.refresh_from_db(fields=["status"])
            raise InvalidJobTransition(f"Job {self.pk} is {self.status}; expected one of {', '.join(allowed_from)}.")
        for name, value in changes.items():
            setattr(self, name, value)

    def start(self) -> None:
        """Mark the job running. A job found running again (a redelivered task) counts a retry."""
        if self.status == JobStatus.RUNNING:
            self._transition((JobStatus.RUNNING,), retry_count=F("retry_count") + 1)
            self.refresh_from_db(fields=["retry_count"])
            return
        self._transition((JobStatus.PENDING,), status=JobStatus.RUNNING, started_at=timezone.now())

    def set_progress(self, progress: int, message: str = "") -> None:
        """Record progress (0-100, never backwards) while running."""
        if not 0 <= progress <= 100:
            raise ValueError(f"Progress must be between 0 and 100, not {progress}.")
        self._transition((JobStatus.RUNNING,), progress=max(progress, self.progress), message=message[:200])

    def finish(self, result_id: int | None = None, message: str = "") -> None:
        """Mark the job succeeded, with the id of what it produced."""
        self._transition(
            (JobStatus.RUNNING,),
            status=JobStatus.SUCCEEDED,
            progress=100,
            result_id=result_id,
            message=message[:200],
            finished_at=timezone.now(),
        )

    def expire(self) -> None:
        """End a job that is past its start deadline and did nothing (allowed from pending or running:
        a redelivered job whose handler found it had not begun)."""
        self._transition(
            (JobStatus.PENDING, JobStatus.RUNNING),
            status=JobStatus.EXPIRED,
            message=self.expiry_message()[:200],
            finished_at=timezone.now(),
        )

    def fail(self, error: str) -> None:
        """Mark the job failed with a readable error; allowed from pending or running."""
        self._transition(
            (JobStatus.PENDING, JobStatus.RUNNING),
            status=JobStatus.FAILED,
            error=error,
            finished_at=timezone.now(),
        )
