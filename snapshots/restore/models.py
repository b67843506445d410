"""Restore: a preview the operator confirms, then a restore that executes it, each with a record
per PV."""

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models

from snapshots.capture.models import Snapshot, ValueType
from squirrel_site.epics_values import from_columns


class RestoreAction(models.TextChoices):
    """What a preview decided for one PV."""

    WRITE = "write", "Write"
    SKIP_UNCHANGED = "skip_unchanged", "Skip: already within tolerance"
    SKIP_READ_ONLY = "skip_read_only", "Skip: read-only PV"
    SKIP_DISCONNECTED = "skip_disconnected", "Skip: disconnected now"
    SKIP_NO_WRITE_ACCESS = "skip_no_write_access", "Skip: no write access"
    SKIP_NO_SAVED_VALUE = "skip_no_saved_value", "Skip: no saved value (disconnected in the snapshot)"
    SKIP_NOT_IN_REGISTRY = "skip_not_in_registry", "Skip: PV no longer in the registry"
    SKIP_NOT_WRITABLE = (
        "skip_not_writable",
        "Skip: not writable (a pvAccess structure such as an NTTable is saved and compared, never written)",
    )


class LiveSource(models.TextChoices):
    CACHE = "cache", "Live cache (monitor)"
    DIRECT = "direct", "Direct read"


class RestorePreview(models.Model):
    """What restoring a snapshot would do, PV by PV, as the operator saw it before confirming.

    A preview expires (`expires_at`) and records a fingerprint of the registry rows of its PVs:
    executing it is refused once it expired, once it was executed, or if any of its PVs was edited
    or deleted since, because the operator confirmed something else.
    """

    snapshot = models.ForeignKey(Snapshot, on_delete=models.CASCADE, related_name="restore_previews")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="restore_previews")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    include_unchanged = models.BooleanField(
        default=False, help_text="Also write PVs whose live value is already within tolerance."
    )
    selection_size = models.PositiveIntegerField(default=0, help_text="PVs considered.")
    registry_fingerprint = models.CharField(
        max_length=32, help_text="md5 of the registry rows of the selected PVs when previewed."
    )
    live_source = models.CharField(max_length=8, choices=LiveSource.choices)
    write_count = models.PositiveIntegerField(default=0)
    unchanged_count = models.PositiveIntegerField(default=0)
    read_only_count = models.PositiveIntegerField(default=0)
    disconnected_count = models.PositiveIntegerField(default=0)
    no_write_access_count = models.PositiveIntegerField(default=0)
    no_saved_value_count = models.PositiveIntegerField(default=0)
    not_in_registry_count = models.PositiveIntegerField(default=0)
    not_writable_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Restore preview #{self.pk} of snapshot {self.snapshot_id}"


class RestorePreviewItem(models.Model):
    """One PV in a preview: its target (the saved setpoint), the live value seen, the decision."""

    preview = models.ForeignKey(RestorePreview, on_delete=models.CASCADE, related_name="items")
    pv = models.ForeignKey("pvs.PV", on_delete=models.SET_NULL, null=True, related_name="+")
    pv_name = models.CharField(max_length=100, help_text="The setpoint address to write.")
    readback_name = models.CharField(max_length=100, blank=True)
    stage = models.PositiveSmallIntegerField(default=0)
    wait_for_completion = models.BooleanField(default=False)
    abs_tolerance = models.FloatField(default=0.0)
    rel_tolerance = models.FloatField(default=0.0)
    value_type = models.CharField(max_length=12, choices=ValueType.choices)
    target_num = models.FloatField(null=True)
    target_str = models.TextField(null=True)
    target_array = ArrayField(models.FloatField(), null=True)
    live_num = models.FloatField(null=True)
    live_str = models.TextField(null=True)
    live_array = ArrayField(models.FloatField(), null=True)
    within_tolerance = models.BooleanField(null=True, help_text="Unknown (null) without both values.")
    action = models.CharField(max_length=24, choices=RestoreAction.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["preview", "pv_name"], name="restorepreviewitem_unique_pv"),
        ]
        indexes = [models.Index(fields=["preview", "action"], name="restorepreviewitem_action")]

    def __str__(self) -> str:
        return f"{self.pv_name}: {self.action}"

    @property
    def target_value(self):
        return from_columns(self.value_type, self.target_num, self.target_str, self.target_array)

    @property
    def live_value(self):
        return from_columns(self.value_type, self.live_num, self.live_str, self.live_array)


class RestoreStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running (or interrupted: a retry resumes it)"
    SUCCEEDED = "succeeded", "Succeeded: every PV written (and verified)"
    PARTIAL = "partial", "Finished with PVs not restored"


class Restore(models.Model):
    """The execution of one confirmed preview; its items are the per-PV record of what happened.

    At most one per preview (the one-to-one is what makes a redelivered task resume instead of
    restoring twice). `undo_snapshot` holds the values the targeted PVs had just before writing.
    """

    preview = models.OneToOneField(RestorePreview, on_delete=models.PROTECT, related_name="restore")
    snapshot = models.ForeignKey(Snapshot, on_delete=models.PROTECT, related_name="restores")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="restores")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    undo_snapshot = models.ForeignKey(
        Snapshot, on_delete=models.PROTECT, null=True, blank=True, related_name="undo_of_restores"
    )
    job = models.ForeignKey("jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="restores")
    status = models.CharField(max_length=10, choices=RestoreStatus.choices, default=RestoreStatus.PENDING)
    options = models.JSONField(default=dict, blank=True, help_text="verify, verify_timeout, put_timeout, ...")
    runs = models.PositiveSmallIntegerField(default=0, help_text="Times a runner started or resumed it.")
    writing_stage = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text=(
            "While it runs: the last stage whose puts may have gone out. "
            "A resume reads back pending items up to it before writing them."
        ),
    )
    summary = models.JSONField(default=dict, blank=True, help_text="Items per status when finished.")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Restore #{self.pk} of snapshot {self.snapshot_id} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (RestoreStatus.SUCCEEDED, RestoreStatus.PARTIAL)


class RestoreItemStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    WRITTEN = "written", "Written"
    VERIFIED = "verified", "Verified"
    MISMATCH = "mismatch", "Readback outside tolerance"
    DISCONNECTED = "disconnected", "Disconnected"
    NO_WRITE_ACCESS = "no_write_access", "No write access"
    TIMEOUT = "timeout", "Timed out"
    FAILED = "failed", "Failed"


class RestoreItem(models.Model):
    """One PV of a restore: target, value before (from the undo snapshot), result, readback seen."""

    # Indexed by the unique (restore, pv_name) and (restore, stage) indexes that lead with it.
    # No database-level constraints, as for SnapshotValue: 85,000 reference checks at commit cost
    # ~0.15 s before a restore's first put. Items are created only with their restore's undo
    # snapshot; Django deletes them with the restore and nulls the PV when a PV is deleted.
    restore = models.ForeignKey(
        Restore, on_delete=models.CASCADE, related_name="items", db_index=False, db_constraint=False
    )
    pv = models.ForeignKey("pvs.PV", on_delete=models.SET_NULL, null=True, related_name="+", db_constraint=False)
    pv_name = models.CharField(max_length=100)
    readback_name = models.CharField(max_length=100, blank=True)
    stage = models.PositiveSmallIntegerField(default=0)
    wait_for_completion = models.BooleanField(default=False)
    abs_tolerance = models.FloatField(default=0.0)
    rel_tolerance = models.FloatField(default=0.0)
    value_type = models.CharField(max_length=12, choices=ValueType.choices)
    target_num = models.FloatField(null=True)
    target_str = models.TextField(null=True)
    target_array = ArrayField(models.FloatField(), null=True)
    old_num = models.FloatField(null=True)
    old_str = models.TextField(null=True)
    old_array = ArrayField(models.FloatField(), null=True)
    status = models.CharField(max_length=16, choices=RestoreItemStatus.choices, default=RestoreItemStatus.PENDING)
    readback_num = models.FloatField(null=True)
    readback_str = models.TextField(null=True)
    readback_array = ArrayField(models.FloatField(), null=True)
    message = models.CharField(max_length=200, blank=True)
    written_at = models.DateTimeField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["restore", "pv_name"], name="restoreitem_unique_pv"),
        ]
        # No index on status: its many updates (written, verified) then stay heap-only (HOT) in the
        # room the table's fillfactor leaves (migration 0008), without touching any index.
        indexes = [models.Index(fields=["restore", "stage"], name="restoreitem_stage")]

    def __str__(self) -> str:
        return f"{self.pv_name}: {self.status}"

    @property
    def target_value(self):
        return from_columns(self.value_type, self.target_num, self.target_str, self.target_array)

    @property
    def old_value(self):
        return from_columns(self.value_type, self.old_num, self.old_str, self.old_array)

    @property
    def readback_value(self):
        return from_columns(self.value_type, self.readback_num, self.readback_str, self.readback_array)
