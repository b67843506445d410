"""The PV registry: what Squirrel saves, compares and restores."""

from django.conf import settings
from django.db import models
from django.db.models import Exists, OuterRef, Q

from pvs.fields import AddressField
from pvs.page_tags import PageTags
from pvs.protocols import CA, PVA, PVA_PREFIX, protocol_of, search_of
from pvs.validators import validate_tolerance
from squirrel_site.bulk_sql import copy_rows, next_ids
from tags.models import Tag

# The fields a free-text PV search looks in (admin search box, API and page filters).
SEARCH_FIELDS = ("setpoint_address", "readback_address", "config_address", "device", "description")


def _is_timestamp(field) -> bool:
    return getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)


ADDRESS_FIELDS = ("setpoint_address", "readback_address", "config_address")


def address_contains(field: str, text: str) -> Q:
    """Rows whose address `field` holds `text` (case-insensitive), as a search box means it.

    Text written with a protocol (``ca://X``, ``PVA://X``) searches addresses of that protocol in
    the registry's spelling (pvs.protocols.search_of, through ``normalized``):
    ``PVA://SR:Q`` finds ``pva://SR:Q1``, ``ca://SR:Q`` finds the Channel Access ``SR:Q1`` and not
    ``pva://SR:Q1``. Text without one (or with an unknown scheme) is looked for as written.
    """
    protocol, text = search_of(text)
    if protocol is None:
        return Q(**{f"{field}__icontains": text})
    if protocol == CA:
        return Q(**{f"{field}__icontains": text}) & ~Q(**{f"{field}__startswith": PVA_PREFIX})
    return Q(**{f"{field}__istartswith": text})  # "pva://NAME...": a prefix, so an address's start


def _any_address(condition) -> Q:
    query = Q()
    for field in ADDRESS_FIELDS:
        query |= condition(field)
    return query


class PVQuerySet(models.QuerySet):
    def with_tags(self):
        """PVs with their tags and tag groups loaded, for one page of a list (admin, API, pages):
        one statement per page, planned the same in every statistics state (pvs/page_tags.py).
        Rows that reach their PV through a foreign key prefetch "pv__page_tags"."""
        return self.prefetch_related("page_tags")

    def create_from_rows(self, rows, *, now) -> list[int]:
        """Insert PVs with COPY and return their ids in order (reserved from the sequence first).

        A row maps field attribute names to values; fields it does not give take their model
        defaults, timestamps `now`. Keys that are not fields (such as `tags`) are ignored.
        """
        fields = [field for field in self.model._meta.concrete_fields if not field.primary_key]
        defaults = {field.attname: now if _is_timestamp(field) else field.get_default() for field in fields}
        ids = next_ids(self.model, len(rows))

        def values(pv_id: int, row) -> tuple:
            return (pv_id, *(row.get(name, default) for name, default in defaults.items()))

        copy_rows(self.model, ["id", *defaults], map(values, ids, rows))
        return ids

    def in_tag_group(self, group):
        """PVs carrying any tag of `group` (a TagGroup or its id), each PV once."""
        return self.filter(Exists(PV.tags.through.objects.filter(pv_id=OuterRef("pk"), tag__group=group)))

    def tagged(self, tag):
        """PVs carrying `tag` (a Tag or its id), each PV once."""
        return self.filter(Exists(PV.tags.through.objects.filter(pv_id=OuterRef("pk"), tag=tag)))

    def search(self, text: str):
        """PVs with `text` in any of SEARCH_FIELDS (case-insensitive); text written with a
        protocol (``ca://X``, ``PVA://X``) in an address of that protocol (:func:`address_contains`)."""
        if search_of(text)[0] is not None:
            return self.filter(_any_address(lambda field: address_contains(field, text)))
        query = Q()
        for field in SEARCH_FIELDS:
            query |= Q(**{f"{field}__icontains": text})
        return self.filter(query)

    def writable(self):
        """PVs a restore may write (not marked read-only)."""
        return self.filter(read_only=False)

    def with_readback(self):
        """PVs that have a readback address."""
        return self.exclude(readback_address="")

    def using_protocol(self, protocol: str):
        """PVs with any address (setpoint, readback or config) on `protocol` ("ca" or "pva"): a
        PV whose setpoint and readback use different protocols is in both selections."""
        if protocol == PVA:
            return self.filter(_any_address(lambda field: Q(**{f"{field}__startswith": PVA_PREFIX})))
        return self.filter(_any_address(lambda field: ~Q(**{f"{field}__startswith": PVA_PREFIX}) & ~Q(**{field: ""})))


class PV(models.Model):
    """One saved quantity: a setpoint with optional readback and config addresses."""

    # Stored as pvs.protocols.normalized spells them: Channel Access bare, pvAccess "pva://NAME".
    setpoint_address = AddressField(unique=True)
    readback_address = AddressField(blank=True)
    config_address = AddressField(blank=True)
    device = models.CharField(max_length=100, blank=True, db_index=True)
    # Bounded so that one request or file cannot put megabytes into every list page and export.
    # The database does not check a TextField's length; forms, the importer and the API do.
    description = models.TextField(blank=True, max_length=1000)
    abs_tolerance = models.FloatField(
        default=0.0,
        validators=[validate_tolerance],
        help_text="Values within this absolute difference count as equal.",
    )
    rel_tolerance = models.FloatField(
        default=0.0,
        validators=[validate_tolerance],
        help_text="Values within this fraction of the saved value count as equal (0.01 = 1%).",
    )
    read_only = models.BooleanField(default=False, help_text="Saved and compared, never written by a restore.")
    restore_stage = models.PositiveSmallIntegerField(
        default=0,
        help_text="Restores write lower stages first; PVs in one stage are written in parallel.",
    )
    wait_for_completion = models.BooleanField(
        default=False, help_text="A restore waits for the IOC to report the put complete."
    )
    tags = models.ManyToManyField(Tag, blank=True, related_name="pvs")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PVQuerySet.as_manager()
    # The prefetch of `tags` for a page of PVs (PVQuerySet.with_tags).
    page_tags = PageTags()

    class Meta:
        verbose_name = "PV"
        verbose_name_plural = "PVs"
        ordering = ["setpoint_address"]
        constraints = [
            # NaN compares greater than Infinity in PostgreSQL, so "< Infinity" rejects both.
            models.CheckConstraint(
                condition=Q(abs_tolerance__gte=0) & Q(abs_tolerance__lt=float("inf")),
                name="pv_abs_tolerance_finite_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(rel_tolerance__gte=0) & Q(rel_tolerance__lt=float("inf")),
                name="pv_rel_tolerance_finite_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return self.setpoint_address

    @property
    def addresses(self) -> list[str]:
        """Every EPICS address this PV uses (Channel Access or pvAccess), setpoint first."""
        return [a for a in (self.setpoint_address, self.readback_address, self.config_address) if a]

    @property
    def setpoint_protocol(self) -> str:
        """The setpoint's protocol: "ca" or "pva" (pvs.protocols)."""
        return protocol_of(self.setpoint_address)

    @property
    def readback_protocol(self) -> str | None:
        """The readback's protocol, or None without a readback."""
        return protocol_of(self.readback_address) if self.readback_address else None

    @property
    def config_protocol(self) -> str | None:
        """The config address's protocol, or None without one."""
        return protocol_of(self.config_address) if self.config_address else None


class PVSet(models.Model):
    """A named, described, reusable PV selection (a Phoebus configuration): the PVs its `filters`
    select (PVFilterSet parameters: tag, tag_group, device, search, read_only), together with
    its explicit list `pvs`. A set with neither selects no PV. Resolved by
    pvs.selections.pv_set_pvs; changed through pvs.pv_sets, which audits each change."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True, max_length=1000)
    filters = models.JSONField(
        default=dict,
        blank=True,
        help_text="PV filters as the PV lists take them: tag (ids, all of them), tag_group, device, search.",
    )
    pvs = models.ManyToManyField(
        PV, blank=True, related_name="pv_sets", help_text="PVs in the set whatever the filters."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="pv_sets"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "PV set"
        verbose_name_plural = "PV sets"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
