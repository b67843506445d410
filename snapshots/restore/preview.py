"""Preview: what restoring a snapshot would do, PV by PV, against the live values (the monitor's
cache when fresh, else a direct read), recorded for the operator to confirm.

The preview also records a fingerprint of the registry rows of its PVs (registry_fingerprint):
executing it is refused once they were edited (snapshots.restore.claim).
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from jobs.models import Job
from monitor import live
from pvs import epics_io
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
from squirrel_site.epics_values import fit_columns, from_columns

DEFAULT_TTL = 300  # seconds a preview stays executable

_SKIP_COUNTS = {
    RestoreAction.WRITE: "write_count",
    RestoreAction.SKIP_UNCHANGED: "unchanged_count",
    RestoreAction.SKIP_READ_ONLY: "read_only_count",
    RestoreAction.SKIP_DISCONNECTED: "disconnected_count",
    RestoreAction.SKIP_NO_WRITE_ACCESS: "no_write_access_count",
    RestoreAction.SKIP_NO_SAVED_VALUE: "no_saved_value_count",
    RestoreAction.SKIP_NOT_IN_REGISTRY: "not_in_registry_count",
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
    rows = SnapshotValue.objects.filter(snapshot=snapshot)
    if pvs is not None:
        rows = rows.filter(pv__in=pvs.values("pk"))
    with set_join():  # the snapshot's values with the registry: two whole sets
        rows = list(
            rows.order_by("pv_name").values_list(
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
        )
    addresses = [row[7] for row in rows if row[0] is not None]
    values, writable, source = _live_values(addresses, io, cache_only)

    items, counts = [], Counter()
    for (
        pv_id,
        saved_name,
        value_type,
        num,
        text,
        arr,
        saved_connected,
        address,
        readback,
        stage,
        wait,
        abs_tol,
        rel_tol,
        read_only,
    ) in rows:
        target = from_columns(value_type, num, text, arr)
        live_value = values.get(address) if pv_id is not None else None
        within = None
        if saved_connected and live_value is not None:
            within = within_tolerance(target, live_value, value_type, abs_tol, rel_tol)
        if pv_id is None:
            action = RestoreAction.SKIP_NOT_IN_REGISTRY
        elif read_only:
            action = RestoreAction.SKIP_READ_ONLY
        elif not saved_connected:
            action = RestoreAction.SKIP_NO_SAVED_VALUE
        elif live_value is None:
            action = RestoreAction.SKIP_DISCONNECTED
        elif not writable.get(address, True):
            action = RestoreAction.SKIP_NO_WRITE_ACCESS
        elif within and not include_unchanged:
            action = RestoreAction.SKIP_UNCHANGED
        else:
            action = RestoreAction.WRITE
        counts[action] += 1
        items.append(
            (
                pv_id,
                address or saved_name,
                readback or "",
                stage or 0,
                bool(wait),
                abs_tol or 0.0,
                rel_tol or 0.0,
                value_type,
                num,
                text,
                arr,
                *fit_columns(value_type, live_value),
                within,
                action,
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
            registry_fingerprint=registry_fingerprint([row[0] for row in rows if row[0] is not None]),
            live_source=source,
            **{_SKIP_COUNTS[action]: n for action, n in counts.items()},
        )
        copy_rows(RestorePreviewItem, ["preview", *ITEM_COLUMNS], ((preview.pk, *item) for item in items))
        if job_id is not None:
            Job.objects.filter(pk=job_id).update(result_id=preview.pk)
    return preview


ITEM_COLUMNS = [
    "pv",
    "pv_name",
    "readback_name",
    "stage",
    "wait_for_completion",
    "abs_tolerance",
    "rel_tolerance",
    "value_type",
    "target_num",
    "target_str",
    "target_array",
    "live_num",
    "live_str",
    "live_array",
    "within_tolerance",
    "action",
]


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
    """This process's EpicsService (pvs.epics_io owns Channel Access)."""
    return epics_io.epics_service()
