"""Snapshots: the saved state of a set of PVs at one moment, with each value's provenance, and the
schedules that take them."""

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q

from squirrel_site import epics_values

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
    ARCHIVE = "archive", "From the archive at a time"


# What a schedule may take: the live modes (a snapshot from the archive is of a time chosen by hand).
LIVE_MODES = [(mode, label) for mode, label in SnapshotMode.choices if mode != SnapshotMode.ARCHIVE]


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
    archived_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="A snapshot from the archive: the time it is of (each value the archive's last sample at or "
        "before it); empty for the others.",
    )
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


# The value kinds of squirrel_site.epics_values (defined there once), and "none" for no value.
ValueType = models.TextChoices("ValueType", [(kind.upper(), (kind, label)) for kind, label in epics_values.choices()])


class ValueSource(models.TextChoices):
    CACHE = "cache", "Live cache"
    DIRECT = "direct", "Direct read"
    ARCHIVE = "archive", "Archiver"
    NONE = "none", "Not read"


class Severity(models.IntegerChoices):
    NO_ALARM = 0, "NO_ALARM"
    MINOR = 1, "MINOR"
    MAJOR = 2, "MAJOR"
    INVALID = 3, "INVALID"


class SnapshotValue(models.Model):
    """One PV's saved setpoint (and readback) in a snapshot, typed, with where it came from.

    The value's columns are squirrel_site.epics_values' (`to_columns`, `from_columns`): numbers in
    float columns (EPICS integers are 32-bit, exact in a double), enums the index in `*_num` and
    the label in `*_str`, arrays of numbers in float arrays. A disconnected PV
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
    age = models.FloatField(
        null=True,
        help_text="Seconds between the value's arrival and the snapshot (from the archive: between the "
        "sample's time and the time asked for).",
    )
    archiver = models.CharField(
        max_length=100,
        blank=True,
        default="",
        db_default="",
        help_text="The archiver a value from the archive came from (pvs.archiver); empty for the others.",
    )
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
        indexes = [
            models.Index(fields=["snapshot", "id"], name="snapshotvalue_snapshot_id"),
            # A comparison reads the structures of the snapshots it compares first (comparison's
            # structure_pairs.structure_pairs): a few rows, found without reading the other 50,000.
            models.Index(
                fields=["snapshot"],
                name="snapshotvalue_structures",
                condition=Q(value_type__in=sorted(epics_values.kinds(compare=epics_values.STRUCT))),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.pv_name} in snapshot {self.snapshot_id}"

    @property
    def setpoint_value(self):
        """The saved setpoint as Python: float, int (also enum index), str or list; None if none."""
        return epics_values.from_columns(self.value_type, self.setpoint_num, self.setpoint_str, self.setpoint_array)

    @property
    def labelled(self) -> bool:
        """Whether the values are indexes shown as labels (an enum's; epics_values.KindSpec)."""
        return epics_values.is_labelled(self.value_type)

    @property
    def readback_value(self):
        """The saved readback, typed like the setpoint; None if none."""
        return epics_values.from_columns(self.value_type, self.readback_num, self.readback_str, self.readback_array)


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
    mode = models.CharField(max_length=10, choices=LIVE_MODES, default=SnapshotMode.HYBRID)
    pv_set = models.ForeignKey(
        "pvs.PVSet",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="schedules",
        verbose_name="PV set",
        help_text="The saved PV set it takes; none: every PV (or the filters it kept from before PV sets).",
    )
    selection = models.JSONField(
        default=dict,
        blank=True,
        help_text='PV filters, as in the API: e.g. {"tag": [3]} or {"device": "MAG"}; empty for every PV. '
        "Used only without a PV set.",
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
