"""The audit log: who did what to the registry, the archive and the machine."""

from django.conf import settings
from django.db import models


class AuditVia(models.TextChoices):
    API = "api", "API"
    ADMIN = "admin", "Admin"
    PAGE = "page", "Page"
    COMMAND = "command", "Command"
    JOB = "job", "Job"


class AuditEntryQuerySet(models.QuerySet):
    def for_target(self, obj):
        """Entries about one object (a PV, a snapshot, a restore, ...), newest first."""
        return self.filter(target_type=obj._meta.label_lower, target_id=str(obj.pk)).order_by("-id")


class AuditEntry(models.Model):
    """One recorded action: a curation edit, a snapshot, a restore, a token issued or revoked.

    `actor_name` keeps the username when the account is deleted later; `details` holds what the
    action needs to be understood afterwards (counts, addresses, old and new values).
    """

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=50, db_index=True)
    via = models.CharField(max_length=10, choices=AuditVia.choices)
    target_type = models.CharField(max_length=100, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    summary = models.CharField(max_length=500)
    details = models.JSONField(default=dict, blank=True)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        verbose_name = "audit entry"
        verbose_name_plural = "audit entries"
        ordering = ["-id"]
        indexes = [models.Index(fields=["target_type", "target_id"], name="audit_target")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_name or '-'} {self.action}: {self.summary}"
