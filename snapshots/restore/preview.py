"""Preview: what restoring a snapshot would do, PV by PV, against the live values (the monitor's
cache when fresh, else a direct read), recorded for the operator to confirm.

The preview also records a fingerprint of the registry rows of its PVs (registry_fingerprint):
executing it is refused once they were edited (snapshots.restore.claim).
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import NamedTuple

from django.db import connection, transaction
from django.utils import timezone

from jobs.models import Job
from monitor import live
from pvs import channels
from snapshots.capture.models import Snapshot, SnapshotValue
from snapshots.capture.services import monitor_is_fresh
from snapshots.comparison.rules import within_tolerance
from snapshots.restore.errors import NeedsChannelAccess
from snapshots.restore.models import (
    LiveSource,
    RestoreAction,
    RestorePreview,
    RestorePreviewItem,
)
from squirrel_site.bulk_sql import copy_rows, set_join
from squirrel_site.epics_values import fit_columns, from_columns, is_writable

DEFAULT_TTL = 300  # seconds a preview stays executable

_SKIP_COUNTS = {
    RestoreAction.WRITE: "write_count",
    RestoreAction.SKIP_UNCHANGED: "unchanged_count",
    RestoreAction.SKIP_READ_ONLY: "read_only_count",
    RestoreAction.SKIP_DISCONNECTED: "disconnected_count",
    RestoreAction.SKIP_NO_WRITE_ACCESS: "no_write_access_count",
    RestoreAction.SKIP_NO_SAVED_VALUE: "no_saved_value_count",
    RestoreAction.SKIP_NOT_IN_REGISTRY: "not_in_registry_count",
    RestoreAction.SKIP_NOT_WRITABLE: "not_writable_count",
}


def preview_restore(
    snapshot: Snapshot,
    *,
    created_by,
    pvs=None,
    include_unchanged: bool = False,
    ttl: float = DEFAULT_TTL,
    io=None,
    cache_only: bool = False,
    job_id: int | None = None,
) -> RestorePreview:
    """Compare `snapshot` with the live values of its PVs (or of `pvs`, a PV queryset) and record
    what a restore would do with each. Live values come from the monitor's cache when its
    heartbeat is fresh (a direct read for addresses it lacks), else from a direct read.

    `cache_only` (web processes, which never talk Channel Access): raise NeedsChannelAccess
    instead of reading directly; nothing is written then. `job_id`: the preview job, whose result
    is saved with the preview.

    PVs already within tolerance are skipped unless `include_unchanged`: operators normally restore
    only what differs, but may ask for everything to be written again.
    """
    values_of = SnapshotValue.objects.filter(snapshot=snapshot)
    if pvs is not None:
        values_of = values_of.filter(pv__in=pvs.values("pk"))
    with set_join():  # the snapshot's values with the registry: two whole sets
        rows = [Saved(*row) for row in values_of.order_by("pv_name").values_list(*SAVED_COLUMNS)]
    addresses = [row.address for row in rows if row.pv_id is not None]
    values, writable, source = _live_values(addresses, io, cache_only)

    items, counts = [], Counter()
    for row in rows:
        value_type, address = row.value_type, row.address
        live_value = values.get(address) if row.pv_id is not None else None
        within = None
        if row.connected and live_value is not None:
            within = within_tolerance(row.target, live_value, value_type, row.abs_tolerance, row.rel_tolerance)
        if row.pv_id is None:
            action = RestoreAction.SKIP_NOT_IN_REGISTRY
        elif row.read_only:
            action = RestoreAction.SKIP_READ_ONLY
        elif not row.connected:
            action = RestoreAction.SKIP_NO_SAVED_VALUE
        elif not is_writable(value_type):
            action = RestoreAction.SKIP_NOT_WRITABLE  # compared above, never sent a put
        elif live_value is None:
            action = RestoreAction.SKIP_DISCONNECTED
        elif not writable.get(address, True):
            action = RestoreAction.SKIP_NO_WRITE_ACCESS
        elif within and not include_unchanged:
            action = RestoreAction.SKIP_UNCHANGED
        else:
            action = RestoreAction.WRITE
        counts[action] += 1
        live_num, live_str, live_array = fit_columns(value_type, live_value)
        items.append(
            Item(
                pv=row.pv_id,
                pv_name=address or row.pv_name,
                readback_name=row.readback_address or "",
                stage=row.restore_stage or 0,
                wait_for_completion=bool(row.wait_for_completion),
                abs_tolerance=row.abs_tolerance or 0.0,
                rel_tolerance=row.rel_tolerance or 0.0,
                value_type=value_type,
                target_num=row.num,
                target_str=row.text,
                target_array=row.array,
                live_num=live_num,
                live_str=live_str,
                live_array=live_array,
                within_tolerance=within,
                action=action,
            )
        )

    now = timezone.now()
    with transaction.atomic():
        preview = RestorePreview.objects.create(
            snapshot=snapshot,
            created_by=created_by,
            expires_at=now + timedelta(seconds=ttl),
            include_unchanged=include_unchanged,
            selection_size=len(rows),
            registry_fingerprint=registry_fingerprint([row.pv_id for row in rows if row.pv_id is not None]),
            live_source=source,
            **{_SKIP_COUNTS[action]: n for action, n in counts.items()},
        )
        copy_rows(RestorePreviewItem, ["preview", *ITEM_COLUMNS], ((preview.pk, *item) for item in items))
        if job_id is not None:
            Job.objects.filter(pk=job_id).update(result_id=preview.pk)
    return preview


class Saved(NamedTuple):
    """A snapshot's value of one PV with the registry's settings for it (None: a PV since deleted)."""

    pv_id: int | None
    pv_name: str
    value_type: str
    num: float | None
    text: str | None
    array: list | None
    connected: bool
    address: str | None  # the registry's setpoint address
    readback_address: str | None
    restore_stage: int | None
    wait_for_completion: bool | None
    abs_tolerance: float | None
    rel_tolerance: float | None
    read_only: bool | None

    @property
    def target(self):
        return from_columns(self.value_type, self.num, self.text, self.array)


# Saved's fields, as SnapshotValue lookups.
SAVED_COLUMNS = (
    "pv_id",
    "pv_name",
    "value_type",
    "setpoint_num",
    "setpoint_str",
    "setpoint_array",
    "connected",
    "pv__setpoint_address",
    "pv__readback_address",
    "pv__restore_stage",
    "pv__wait_for_completion",
    "pv__abs_tolerance",
    "pv__rel_tolerance",
    "pv__read_only",
)


class Item(NamedTuple):
    """A RestorePreviewItem row, as COPY writes it (ITEM_COLUMNS)."""

    pv: int | None
    pv_name: str
    readback_name: str
    stage: int
    wait_for_completion: bool
    abs_tolerance: float
    rel_tolerance: float
    value_type: str
    target_num: float | None
    target_str: str | None
    target_array: list | None
    live_num: float | None
    live_str: str | None
    live_array: list | None
    within_tolerance: bool | None
    action: str


ITEM_COLUMNS = list(Item._fields)


def _live_values(addresses: list[str], io, cache_only: bool = False) -> tuple[dict, dict, str]:
    """(value by connected address, write access by address, source) for the preview."""
    values, writable, missing = {}, {}, addresses
    source = LiveSource.DIRECT
    if addresses and monitor_is_fresh():
        source = LiveSource.CACHE
        cached, metas, _ = live.read_values_and_metadata(addresses)
        missing = []
        for address in addresses:
            value = cached[address]
            if value is None:
                missing.append(address)  # not (yet) in the cache: read it
            elif value.connected:
                values[address] = value.value
            meta = metas[address]
            if meta is not None:
                writable[address] = meta.write_access
    if missing and cache_only:
        raise NeedsChannelAccess(
            f"{len(missing)} of {len(addresses)} PVs are not in a fresh monitor cache: reading them takes a worker."
            if source == LiveSource.CACHE
            else "The monitor's cache is not fresh: reading the PVs takes a worker."
        )
    if missing:
        io = io or _service()
        for address, result in io.read(missing).items():
            if result.reading is not None:
                values[address] = result.reading.value
        for address, meta in io.metadata(missing).items():
            if meta is not None:
                writable[address] = meta.write_access
    return values, writable, source


def registry_fingerprint(pv_ids: list[int]) -> str:
    """md5 over the registry rows of `pv_ids` (everything a restore depends on), in id order."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT md5(count(*)::text || ':' || coalesce(string_agg(concat_ws('|', id, setpoint_address,"
            " readback_address, abs_tolerance::text, rel_tolerance::text, read_only, restore_stage,"
            " wait_for_completion), ',' ORDER BY id), '')) FROM pvs_pv WHERE id = ANY(%s)",
            [pv_ids],
        )
        return cursor.fetchone()[0]


def _service():
    """This process's EPICS service for both protocols (pvs.channels)."""
    return channels.service()
