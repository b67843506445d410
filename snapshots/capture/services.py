"""Taking snapshots: read the selected PVs (live cache, direct Channel Access read, or both; or the
archive's values at a past time) and write the snapshot in one transaction.

Stages, timed in `Snapshot.timings` (seconds) for benchmarks and logs: `registry` (the PVs'
addresses with `values_list`), `cache` (pipelined HMGETs), `direct` (Channel Access reads) and
`write` (Snapshot row + the row tuples, built while COPY sends the ones before + commit); a
snapshot from the archive has `archive` (metadata from Redis and the archivers' answers) in place
of `cache` and `direct`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime

import redis
from django.db import transaction

from jobs.models import Job
from monitor import health as monitor_health
from monitor import live
from pvs import archiver
from pvs.models import PV
from snapshots.capture import values
from snapshots.capture.models import (
    MANAGE_PROTECTED_TAGS,
    Snapshot,
    SnapshotMode,
    SnapshotOrigin,
    SnapshotTag,
    SnapshotValue,
    ValueSource,
)
from squirrel_site.bulk_sql import copy_rows

logger = logging.getLogger(__name__)

Progress = Callable[[int, str], None]
TITLE_MAX_LENGTH = Snapshot._meta.get_field("title").max_length
REASON_MAX_LENGTH = SnapshotValue._meta.get_field("reason").max_length
# No archive holds an EPICS value from before this year (the Archiver Appliance dates from 2013).
ARCHIVE_EARLIEST_YEAR = 1990


class SnapshotError(Exception):
    """A snapshot cannot be taken or written; the message is meant for the user."""


def monitor_is_fresh(max_heartbeat_age: float = 5.0) -> bool:
    """True if every monitor shard is ok (monitor.health): at least one heartbeat exists, each is
    recent and synced, and no shard of a split is missing. Redis being unreachable counts as stale.

    A monitor that has just taken over is not synced until every address has its first value in
    Redis: until then the cache may still hold a previous leader's old values.
    """
    try:
        shards = monitor_health.monitor_shards(max_heartbeat_age)
    except redis.RedisError:
        return False
    return monitor_health.overall_status(shards) == monitor_health.OK


def take_snapshot(
    *,
    title: str,
    created_by,
    pvs=None,
    mode: str = SnapshotMode.HYBRID,
    comment: str = "",
    tags: Iterable = (),
    origin: str = SnapshotOrigin.MANUAL,
    max_heartbeat_age: float = 5.0,
    reader=None,
    progress: Progress | None = None,
    read_timeout: float = 2.0,
    schedule_id: int | None = None,
    job_id: int | None = None,
    at: datetime | None = None,
    archive_timeout: float = 60.0,
) -> Snapshot:
    """Save the current values of `pvs` (a PV queryset; None: the whole registry), or with `mode`
    archive their archived values at `at` (:func:`take_archived_snapshot`).

    `mode` cache takes values from the monitor's Redis cache, direct reads every address over
    Channel Access with `reader` (default: the process's EpicsService), hybrid takes cached
    values that are connected and reads the rest (disconnected or missing). The cache counts
    only while every monitor shard's heartbeat is at most `max_heartbeat_age` seconds old: the
    monitor is subscribed to every address, so a connected cached value is current to within
    its flush lag however long ago it last changed. With a stale heartbeat, cache and hybrid
    read everything directly. `tags` are SnapshotTags
    or tag names; protected ones (golden) need a superuser. `schedule_id` links a scheduled
    snapshot to its schedule, and `job_id` records the snapshot as its Job's result, in the same
    transaction: a job redelivered after a crash finds its snapshot instead of taking a second
    one. Raises SnapshotError.

    The snapshot returned carries `timings` (above) and `registry`: (id, setpoint address,
    readback address) of each PV it holds, as read in its transaction.
    """
    report = progress or _no_progress
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = now - clock
        clock = now

    if mode not in SnapshotMode.values:
        raise SnapshotError(f"Unknown snapshot mode {mode!r}: use {', '.join(SnapshotMode.values)}.")
    if (mode == SnapshotMode.ARCHIVE) != (at is not None):
        raise SnapshotError("A snapshot from the archive, and only one, needs the time it is of.")
    title = _checked_title(title)
    tag_objects = resolve_tags(tags, created_by)
    if at is not None:
        archive_refusal = archive_time_refusal(at)
        if archive_refusal:
            raise SnapshotError(archive_refusal)
    report(0, "Reading the PV selection")
    registry = _registry(pvs)
    if not registry:
        raise SnapshotError("No PVs selected.")
    lap("registry")
    if at is not None:
        return take_archived_snapshot(
            registry,
            at,
            title=title,
            comment=comment,
            created_by=created_by,
            origin=origin,
            tags=tag_objects,
            report=report,
            timings=timings,
            timeout=archive_timeout,
            job_id=job_id,
        )

    use_cache = mode != SnapshotMode.DIRECT and monitor_is_fresh(max_heartbeat_age)
    setpoints = [row[1] for row in registry]
    readbacks = [row[2] for row in registry if row[2]]
    report(10, f"Reading {len(registry)} PVs from the live cache" if use_cache else "Reading metadata")
    cached, cached_readbacks, metadata, checked_at = _read_cache(setpoints, readbacks, use_cache)
    lap("cache")

    direct = _direct_pvs(registry, mode, use_cache, cached, cached_readbacks)
    results = {}
    if direct:
        addresses = [a for _, setpoint, readback in direct for a in (setpoint, readback) if a]
        report(30, f"Value {len(addresses)} addresses directly")
        reader = reader or _default_reader()
        results = reader.read(addresses, read_timeout)
        metadata = _with_read_metadata(metadata, reader, [setpoint for _, setpoint, _ in direct])
    lap("direct")

    report(80, "Writing the snapshot")
    # Built while COPY sends the rows before them: PostgreSQL inserts while Python builds.
    rows = _rows(registry, cached, cached_readbacks, metadata, {row[0] for row in direct}, results)
    snapshot = save_snapshot(
        title=title,
        comment=comment,
        created_by=created_by,
        mode=mode,
        origin=origin,
        tags=tag_objects,
        rows=rows,
        schedule_id=schedule_id,
        job_id=job_id,
    )
    lap("write")
    snapshot.timings = timings
    snapshot.registry = registry
    logger.info(
        "Snapshot %s: %d PVs (%d read directly), %d disconnected, in %.3f s (%s)",
        snapshot.pk,
        snapshot.pv_count,
        len(direct),
        snapshot.disconnected_count,
        sum(timings.values()),
        ", ".join(f"{stage} {seconds:.3f}" for stage, seconds in timings.items()),
    )
    report(100, f"Saved {snapshot.pv_count} PVs ({snapshot.disconnected_count} disconnected)")
    return snapshot


def archive_time_refusal(at: datetime, now: datetime | None = None) -> str | None:
    """Why a snapshot from the archive at `at` cannot be taken, or None: no archiver configured,
    a time without its zone, before 1990 (no archive holds it) or in the future."""
    if not archiver.archivers():
        return "No archiver is configured (SQUIRREL_ARCHIVER_URL): a snapshot from the archive needs one."
    if at.tzinfo is None or at.utcoffset() is None:
        return "The time of a snapshot from the archive needs its time zone."
    now = now or datetime.now(at.tzinfo)
    if at > now:
        return f"{at.isoformat(timespec='seconds')} is in the future: the archive holds only the past."
    if at.year < ARCHIVE_EARLIEST_YEAR:
        return f"{at.isoformat(timespec='seconds')} is before {ARCHIVE_EARLIEST_YEAR}: no archive holds it."
    return None


def take_archived_snapshot(
    registry: list[tuple[int, str, str]],
    at: datetime,
    *,
    title: str,
    comment: str,
    created_by,
    origin: str,
    tags: Sequence[SnapshotTag],
    report: Progress,
    timings: dict[str, float],
    timeout: float,
    job_id: int | None,
) -> Snapshot:
    """The snapshot of `registry` (rows of :func:`_registry`) as archived at `at`: each address's
    last sample at or before it, from the first archiver that has one (pvs.archiver.values_at).

    A PV whose setpoint no archiver has is stored as missing (disconnected) with the reason; each
    value keeps its sample's time, the archiver it came from and its age at `at`. Units, precision
    and enum labels are the channels' present ones (the monitor's metadata, which also tells an
    enum's index from an integer): the archive's answer carries none. Nothing is stored when no
    archiver answers (SnapshotError naming each and why).
    """
    addresses = list(dict.fromkeys(a for _, setpoint, readback in registry for a in (setpoint, readback) if a))
    started = time.perf_counter()
    report(10, "Reading metadata")
    try:
        metadata = live.read_metadata(addresses)
    except redis.RedisError as error:
        logger.warning("No metadata for the snapshot from the archive, Redis is unreachable: %s", error)
        metadata = {}
    kinds = {address: meta.kind for address, meta in metadata.items() if meta is not None}
    report(20, f"Asking the archive for {len(addresses)} addresses at {archiver.iso(at)}")
    try:
        archived = archiver.values_at(addresses, at, timeout=timeout, kinds=kinds)
    except archiver.ArchiverError as error:
        raise SnapshotError(str(error)) from None
    timings["archive"] = time.perf_counter() - started
    report(80, "Writing the snapshot")
    started = time.perf_counter()
    snapshot = save_snapshot(
        title=title,
        comment=comment,
        created_by=created_by,
        mode=SnapshotMode.ARCHIVE,
        origin=origin,
        tags=tags,
        rows=_archived_rows(registry, archived, metadata, at.timestamp()),
        job_id=job_id,
        archived_at=at,
        columns=values.ARCHIVE_ROW_COLUMNS,
    )
    timings["write"] = time.perf_counter() - started
    snapshot.timings = timings
    snapshot.registry = registry
    logger.info(
        "Snapshot %s from the archive at %s: %d PVs, %d not archived (%s)",
        snapshot.pk,
        archiver.iso(at),
        snapshot.pv_count,
        snapshot.disconnected_count,
        ", ".join(f"{stage} {seconds:.3f}" for stage, seconds in timings.items()),
    )
    report(100, f"Saved {snapshot.pv_count} PVs as archived ({snapshot.disconnected_count} not archived)")
    return snapshot


def _archived_rows(registry, archived: dict, metadata: dict, at_seconds: float) -> Iterator[tuple]:
    """Row tuples (values.ARCHIVE_ROW_COLUMNS) from pvs.archiver.values_at's answers. The age is
    `at` minus the sample's time: pv_row takes `at` as the time taken and the sample's time as the
    time it arrived."""
    pv_row, source = values.pv_row, ValueSource.ARCHIVE.value
    archived_type = archiver.Archived
    for pv_id, setpoint_address, readback_address in registry:
        found = archived[setpoint_address]
        back = archived.get(readback_address) if readback_address else None
        readback = back.value if isinstance(back, archived_type) else None
        meta = metadata.get(setpoint_address)
        if isinstance(found, archived_type):
            row = pv_row(pv_id, setpoint_address, readback_address, found.value, readback, meta, source, at_seconds)
            yield (*row, found.archiver)
        else:
            reason = found.reason[:REASON_MAX_LENGTH]
            row = pv_row(pv_id, setpoint_address, readback_address, None, readback, meta, source, at_seconds, reason)
            yield (*row, back.archiver if isinstance(back, archived_type) else "")


def save_snapshot(
    *,
    title: str,
    comment: str,
    created_by,
    mode: str,
    origin: str,
    tags: Sequence[SnapshotTag],
    rows: Iterable[tuple],
    schedule_id: int | None = None,
    job_id: int | None = None,
    archived_at: datetime | None = None,
    columns: Sequence[str] = values.ROW_COLUMNS,
) -> Snapshot:
    """Write a Snapshot and its values (tuples in `columns` order, values.ROW_COLUMNS by default)
    in one transaction.

    The values go in with PostgreSQL COPY; any failure rolls everything back. `rows` may be a
    generator: each row is built while COPY sends those before it, and the counts are set after.
    """
    counts = {"pvs": 0, "disconnected": 0}
    connected = values.CONNECTED_INDEX

    def counted(snapshot_id: int) -> Iterable[tuple]:
        for row in rows:
            counts["pvs"] += 1
            if not row[connected]:
                counts["disconnected"] += 1
            yield (snapshot_id, *row)

    with transaction.atomic():
        snapshot = Snapshot.objects.create(
            title=title,
            comment=comment,
            created_by=created_by,
            mode=mode,
            origin=origin,
            pv_count=0,
            disconnected_count=0,
            schedule_id=schedule_id,
            archived_at=archived_at,
        )
        if tags:
            snapshot.tags.set(tags)
        snapshot_id = snapshot.pk
        # Binary COPY (~0.3 s for 50,000 rows where text takes ~0.45 s): row values match the
        # columns' types exactly (snapshots.capture.values builds them).
        copy_rows(SnapshotValue, ["snapshot_id", *columns], counted(snapshot_id), binary=True)
        snapshot.pv_count, snapshot.disconnected_count = counts["pvs"], counts["disconnected"]
        Snapshot.objects.filter(pk=snapshot_id).update(
            pv_count=snapshot.pv_count, disconnected_count=snapshot.disconnected_count
        )
        if job_id is not None:
            Job.objects.filter(pk=job_id).update(result_id=snapshot_id)
    return snapshot


def resolve_tags(tags: Iterable, user) -> list[SnapshotTag]:
    """SnapshotTags from tags or names; SnapshotError for unknown names or a protected tag
    given by someone without the permission to manage protected tags."""
    objects, names = [], []
    for tag in tags:
        (objects if isinstance(tag, SnapshotTag) else names).append(tag)
    if names:
        found = {tag.name: tag for tag in SnapshotTag.objects.filter(name__in=names)}
        unknown = sorted(set(names) - found.keys())
        if unknown:
            raise SnapshotError(f"Unknown snapshot tag: {', '.join(unknown)}.")
        objects += [found[name] for name in names]
    refusal = protected_tags_refusal(user, (), objects)
    if refusal:
        raise SnapshotError(refusal)
    return list({tag.pk: tag for tag in objects}.values())


def protected_tags_refusal(user, before: Iterable[SnapshotTag], after: Iterable[SnapshotTag]) -> str | None:
    """Why `user` may not change a snapshot's tags from `before` to `after`, or None: adding or
    removing a protected tag (golden) needs the permission to manage protected tags."""
    changed = {tag.name for tag in before if tag.protected} ^ {tag.name for tag in after if tag.protected}
    if changed and not (user is not None and user.has_perm(MANAGE_PROTECTED_TAGS)):
        return f"Only administrators may add or remove protected tags such as {', '.join(sorted(changed))}."
    return None


def _no_progress(percent: int, message: str) -> None:
    pass


def _checked_title(title: str) -> str:
    title = (title or "").strip()
    if not title:
        raise SnapshotError("A snapshot needs a title.")
    if len(title) > TITLE_MAX_LENGTH:
        raise SnapshotError(f"The title is longer than {TITLE_MAX_LENGTH} characters.")
    return title


def _registry(pvs) -> list[tuple[int, str, str]]:
    """(id, setpoint, readback) of each selected PV, each PV once, without model instances."""
    queryset = PV.objects.all() if pvs is None else pvs
    rows = queryset.order_by().values_list("id", "setpoint_address", "readback_address")
    # A selection joined through tags may repeat a PV; a snapshot holds each PV once.
    return list({row[0]: row for row in rows}.values())


def _read_cache(setpoints: list[str], readbacks: list[str], use_cache: bool):
    """(setpoint values, readback values, setpoint metadata, when read) from Redis.

    Without the cache only metadata is read (units, precision, enum labels): Channel Access
    reads return values only. An unreachable Redis then just means no metadata.
    """
    checked_at = time.time()
    if use_cache:
        cached, metadata, cached_readbacks = live.read_values_and_metadata(setpoints, extra_values=readbacks)
        return cached, cached_readbacks, metadata, checked_at
    try:
        metadata = live.read_metadata(setpoints)
    except redis.RedisError as error:
        logger.warning("No metadata for the snapshot, Redis is unreachable: %s", error)
        metadata = {}
    return {}, {}, metadata, checked_at


def _with_read_metadata(metadata: dict, reader, setpoints: list[str]) -> dict:
    """`metadata` (the cache's) completed with what `reader` learnt of the setpoints it lacks
    (units, precision, enum labels): a pvAccess get carries its display and an enum's choices, and
    Channel Access metadata arrives once per connection, so a direct snapshot keeps them without a
    monitor. A reader that keeps no metadata (``metadata`` absent) adds nothing."""
    lacking = [address for address in setpoints if metadata.get(address) is None]
    read_metadata = getattr(reader, "metadata", None)
    if not lacking or read_metadata is None:
        return metadata
    found = {address: meta for address, meta in read_metadata(lacking).items() if meta is not None}
    return {**metadata, **found} if found else metadata


def _direct_pvs(registry, mode, use_cache, cached, cached_readbacks):
    """The registry rows to read directly: all without the cache, none in cache mode, and in
    hybrid mode those whose setpoint or readback is missing from the cache or disconnected."""
    if not use_cache:
        return registry
    if mode == SnapshotMode.CACHE:
        return []

    def usable(value) -> bool:
        return value is not None and value.connected

    return [row for row in registry if not usable(cached[row[1]]) or (row[2] and not usable(cached_readbacks[row[2]]))]


def _rows(registry, cached, cached_readbacks, metadata, direct_ids, results) -> Iterator[tuple]:
    """Row tuples for every PV, from the cache or from the direct read results, as COPY takes them."""
    taken = time.time()
    pv_row = values.pv_row
    get_meta = metadata.get
    cache, direct = ValueSource.CACHE.value, ValueSource.DIRECT.value
    for pv_id, setpoint_address, readback_address in registry:
        meta = get_meta(setpoint_address)
        if pv_id in direct_ids:
            setpoint, reason = _direct_sample(results.get(setpoint_address))
            readback = _direct_sample(results.get(readback_address))[0] if readback_address else None
            yield pv_row(pv_id, setpoint_address, readback_address, setpoint, readback, meta, direct, taken, reason)
            continue
        setpoint = cached[setpoint_address]
        readback = cached_readbacks[readback_address] if readback_address else None
        if readback is not None and not readback.connected:
            readback = None
        if setpoint is None:
            row = pv_row(
                pv_id,
                setpoint_address,
                readback_address,
                None,
                readback,
                meta,
                ValueSource.NONE.value,
                taken,
                values.NO_VALUE_IN_CACHE,
            )
        elif not setpoint.connected:
            row = pv_row(
                pv_id, setpoint_address, readback_address, None, readback, meta, cache, taken, values.DISCONNECTED
            )
        else:
            row = pv_row(pv_id, setpoint_address, readback_address, setpoint, readback, meta, cache, taken)
        yield row


def _direct_sample(result):
    """(reading, reason) from one EpicsService ReadResult (None: the reader returned nothing)."""
    if result is None:
        return None, values.NOT_READ
    if result.reading is None:
        return None, result.error or values.NO_VALUE
    return result.reading, ""


def _default_reader():
    # Imported here: web processes take cache snapshots and never need an EPICS client.
    from pvs.channels import service

    return service()
