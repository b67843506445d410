"""Snapshots: the saved state of a set of PVs at one moment, with each value's provenance."""

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q

GOLDEN_TAG = "golden"
# Setting or removing a protected tag (golden) needs this permission (the admin role holds it).
MANAGE_PROTECTED_TAGS = "snapshots.manage_protected_tags"


class SnapshotTag(models.Model):
    """A label on snapshots; protected labels (golden) may only be set or removed by admins."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    protected = models.BooleanField(default=False, help_text="Only administrators may add or remove this tag.")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SnapshotMode(models.TextChoices):
    CACHE = "cache", "From the live cache"
    DIRECT = "direct", "Direct read"
    HYBRID = "hybrid", "Cache when fresh, else direct read"


class SnapshotOrigin(models.TextChoices):
    MANUAL = "manual", "Taken by a user"
    SCHEDULED = "scheduled", "Scheduled"
    PRE_RESTORE = "pre_restore", "Automatic, before a restore (undo point)"
    IMPORTED = "imported", "Imported from a file"


class SnapshotQuerySet(models.QuerySet):
    def for_list(self):
        """Snapshots with author and tags loaded, newest first, for list pages and the API."""
        return self.select_related("created_by").prefetch_related("tags").order_by("-created_at", "-id")

    def golden(self):
        """Snapshots carrying the golden tag."""
        return self.filter(tags__name=GOLDEN_TAG)


class Snapshot(models.Model):
    """A saved machine state; its values are written in one transaction and never edited."""

    title = models.CharField(max_length=200)
    comment = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="snapshots")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    mode = models.CharField(max_length=10, choices=SnapshotMode.choices)
    origin = models.CharField(max_length=12, choices=SnapshotOrigin.choices, default=SnapshotOrigin.MANUAL)
    tags = models.ManyToManyField(SnapshotTag, blank=True, related_name="snapshots")
    pv_count = models.PositiveIntegerField(default=0)
    disconnected_count = models.PositiveIntegerField(default=0)
    schedule = models.ForeignKey(
        "SnapshotSchedule",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="snapshots",
        help_text="The schedule that took it, if any (its retention rule applies).",
    )

    objects = SnapshotQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("manage_protected_tags", "Can set or remove protected snapshot tags (golden)")]

    def __str__(self) -> str:
        return f"{self.title} ({self.created_at:%Y-%m-%d %H:%M})" if self.created_at else self.title


class ValueType(models.TextChoices):
    FLOAT = "float", "Floating point"
    INT = "int", "Integer"
    ENUM = "enum", "Enum (index and label)"
    STRING = "string", "String"
    FLOAT_ARRAY = "float_array", "Array of floats"
    INT_ARRAY = "int_array", "Array of integers"
    NONE = "none", "No value (disconnected)"


class ValueSource(models.TextChoices):
    CACHE = "cache", "Live cache"
    DIRECT = "direct", "Direct read"
    NONE = "none", "Not read"


class Severity(models.IntegerChoices):
    NO_ALARM = 0, "NO_ALARM"
    MINOR = 1, "MINOR"
    MAJOR = 2, "MAJOR"
    INVALID = 3, "INVALID"


class SnapshotValue(models.Model):
    """One PV's saved setpoint (and readback) in a snapshot, typed, with where it came from.

    Numbers live in float columns (EPICS integers are 32-bit, exact in a double), enums keep
    the index in `*_num` and the label in `*_str`, arrays in float arrays. A disconnected PV
    has no value, `connected=False` and a reason, never a stale number.
    """

    # Indexed by (snapshot, id) below, which also serves every lookup by snapshot alone.
    # No database-level constraints on either reference: checking 50,000 of each at commit cost
    # ~0.2 s of a snapshot's 1 s budget. Values are written only with their new snapshot, in its
    # transaction; Django deletes them with their snapshot and nulls the PV when a PV is deleted.
    snapshot = models.ForeignKey(
        Snapshot, on_delete=models.CASCADE, related_name="values", db_index=False, db_constraint=False
    )
    pv = models.ForeignKey(
        "pvs.PV", on_delete=models.SET_NULL, null=True, related_name="snapshot_values", db_constraint=False
    )
    pv_name = models.CharField(max_length=100, help_text="The setpoint address when the snapshot was taken.")
    readback_name = models.CharField(max_length=100, blank=True)
    value_type = models.CharField(max_length=12, choices=ValueType.choices)

    setpoint_num = models.FloatField(null=True)
    setpoint_str = models.TextField(null=True)
    setpoint_array = ArrayField(models.FloatField(), null=True)
    status = models.SmallIntegerField(null=True, help_text="EPICS alarm status of the setpoint.")
    severity = models.SmallIntegerField(null=True, choices=Severity.choices)
    timestamp = models.DateTimeField(null=True, help_text="IOC timestamp of the setpoint.")

    readback_num = models.FloatField(null=True)
    readback_str = models.TextField(null=True)
    readback_array = ArrayField(models.FloatField(), null=True)
    readback_status = models.SmallIntegerField(null=True)
    readback_severity = models.SmallIntegerField(null=True, choices=Severity.choices)
    readback_timestamp = models.DateTimeField(null=True)

    units = models.CharField(max_length=40, blank=True)
    precision = models.SmallIntegerField(null=True)
    enum_labels = ArrayField(models.CharField(max_length=40), null=True)

    source = models.CharField(max_length=8, choices=ValueSource.choices)
    age = models.FloatField(null=True, help_text="Seconds between the value's arrival and the snapshot.")
    connected = models.BooleanField(default=True)
    reason = models.CharField(max_length=200, blank=True, help_text="Why there is no value.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["snapshot", "pv_name"], name="snapshotvalue_unique_pv"),
            models.CheckConstraint(
                condition=Q(connected=True)
                | Q(setpoint_num__isnull=True, setpoint_str__isnull=True, setpoint_array__isnull=True),
                name="snapshotvalue_disconnected_has_no_value",
            ),
        ]
        # Pages of a snapshot's values in id order (the API's cursor pages) read this index in
        # order. With an index on snapshot alone, PostgreSQL walked the primary key from the start
        # of the table and skipped the rows of every older snapshot: 33 ms for the second of three
        # 50,000-PV snapshots, and growing with the archive.
        indexes = [models.Index(fields=["snapshot", "id"], name="snapshotvalue_snapshot_id")]

    def __str__(self) -> str:
        return f"{self.pv_name} in snapshot {self.snapshot_id}"

    @property
    def setpoint_value(self):
        """The saved setpoint as Python: float, int (also enum index), str or list; None if none."""
        return _typed(self.value_type, self.setpoint_num, self.setpoint_str, self.setpoint_array)

    @property
    def readback_value(self):
        """The saved readback, typed like the setpoint; None if none."""
        return _typed(self.value_type, self.readback_num, self.readback_str, self.readback_array)


def _typed(value_type: str, number, text, array):
    if value_type in (ValueType.FLOAT, ValueType.FLOAT_ARRAY):
        return array if array is not None else number
    if value_type in (ValueType.INT, ValueType.ENUM):
        return None if number is None else int(number)
    if value_type == ValueType.INT_ARRAY:
        return None if array is None else [int(x) for x in array]
    if value_type == ValueType.STRING:
        return text
    return None


# Restore: a preview the operator confirms, then a restore that executes it. ----------------------


class RestoreAction(models.TextChoices):
    """What a preview decided for one PV."""

    WRITE = "write", "Write"
    SKIP_UNCHANGED = "skip_unchanged", "Skip: already within tolerance"
    SKIP_READ_ONLY = "skip_read_only", "Skip: read-only PV"
    SKIP_DISCONNECTED = "skip_disconnected", "Skip: disconnected now"
    SKIP_NO_WRITE_ACCESS = "skip_no_write_access", "Skip: no write access"
    SKIP_NO_SAVED_VALUE = "skip_no_saved_value", "Skip: no saved value (disconnected in the snapshot)"
    SKIP_NOT_IN_REGISTRY = "skip_not_in_registry", "Skip: PV no longer in the registry"


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
        return _typed(self.value_type, self.target_num, self.target_str, self.target_array)

    @property
    def live_value(self):
        return _typed(self.value_type, self.live_num, self.live_str, self.live_array)


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
        return _typed(self.value_type, self.target_num, self.target_str, self.target_array)

    @property
    def old_value(self):
        return _typed(self.value_type, self.old_num, self.old_str, self.old_array)

    @property
    def readback_value(self):
        return _typed(self.value_type, self.readback_num, self.readback_str, self.readback_array)


SET_SCHEDULE_OWNER = "snapshots.set_schedule_owner"


class SnapshotSchedule(models.Model):
    """Snapshots taken on a timetable (a celery-beat crontab), with a retention rule.

    Saving a schedule creates or updates its celery-beat PeriodicTask; deleting it deletes the
    task. Old snapshots beyond `keep_last` are deleted after each run, except golden ones and
    ones a restore refers to.
    """

    name = models.CharField(max_length=100, unique=True)
    enabled = models.BooleanField(default=True)
    crontab = models.ForeignKey("django_celery_beat.CrontabSchedule", on_delete=models.PROTECT)
    mode = models.CharField(max_length=10, choices=SnapshotMode.choices, default=SnapshotMode.HYBRID)
    selection = models.JSONField(
        default=dict,
        blank=True,
        help_text='PV filters, as in the API: e.g. {"tag": [3]} or {"device": "MAG"}; empty for every PV.',
    )
    tags = models.ManyToManyField(
        SnapshotTag, blank=True, limit_choices_to={"protected": False}, related_name="schedules"
    )
    keep_last = models.PositiveIntegerField(default=48, help_text="How many of its snapshots to keep (at least 1).")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="snapshot_schedules",
        help_text="The author recorded on its snapshots: whoever creates the schedule, unless an admin sets another.",
    )
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="snapshot_schedule",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.CheckConstraint(condition=Q(keep_last__gte=1), name="schedule_keeps_at_least_one")]
        # Its snapshots are recorded as the owner's: making someone else the owner is the admin role's.
        permissions = [("set_schedule_owner", "Can make another user a schedule's owner")]

    def __str__(self) -> str:
        return self.name
