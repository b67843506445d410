"""The PV monitor: every registry address subscribed (Channel Access and pvAccess), kept live in Redis.

One thread does everything, in small steps (a CA callback thread next to a Redis flusher thread
stalls on the GIL: docs/monitor.md): it polls both protocols (pvs.channels.ChannelSet) for up to
one flush interval, keeps the
latest value per address, then writes what changed to Redis in one pipelined, fenced batch and
publishes one change notice. Between flushes it renews its leader lease, writes a heartbeat and
checks whether the registry changed. Only the holder of the shard's lease writes; a monitor
without it waits as a standby and takes over when the lease expires.
"""

from __future__ import annotations

import heapq
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import redis
from django.db import DatabaseError, close_old_connections
from django.db.models import Count, Max, Sum

from monitor import live
from pvs.channels import ChannelSet
from pvs.epics_io import METADATA_PER_POLL, PollResult
from pvs.models import PV
from pvs.protocols import PROTOCOLS, PVA_PREFIX, protocol_of
from squirrel_site.epics_values import Value
from squirrel_site.sd_notify import Watchdog, notify

log = logging.getLogger(__name__)

NEVER_CONNECTED_LISTED = 20  # the heartbeat names this many of the addresses no IOC ever answered


@dataclass
class MonitorSettings:
    """How often the monitor does each of its chores (seconds)."""

    shard: live.Shard = field(default_factory=lambda: live.Shard(0, 1))
    flush_interval: float = 0.1
    registry_interval: float = 2.0
    heartbeat_interval: float = 1.0
    lease_ttl: float = 5.0
    standby_interval: float = 1.0
    connect_grace: float = 3.0  # an address with no value after this long is written as disconnected
    # Start-up in two stages: setpoints first, the other addresses once the setpoints have their
    # first values (or after stage_timeout, for setpoints whose IOC is down). One IOC answers one
    # client's requests in order, so readback claims sent with the setpoints' would delay every
    # setpoint's first value (measured at 50K PVs: setpoints in 3.3-3.7 s instead of 5.2-5.8 s;
    # waiting for values rather than connections: 3.8 s -> 3.2 s, docs/benchmarks.md).
    stage_timeout: float = 2.0
    stage_minimum: int = 1000  # smaller additions go in one stage
    owner: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")


@dataclass
class _Stats:
    received: int = 0
    written: int = 0
    ages: list[float] = field(default_factory=list)
    since: float = field(default_factory=time.monotonic)

    def take(self) -> tuple[float, float, float]:
        """(received/s, written/s, p95 age in s) since the last call; resets the window."""
        elapsed = max(time.monotonic() - self.since, 1e-6)
        ages = sorted(self.ages)
        p95 = ages[int(0.95 * (len(ages) - 1))] if ages else 0.0
        result = (self.received / elapsed, self.written / elapsed, p95)
        self.received, self.written, self.ages, self.since = 0, 0, [], time.monotonic()
        return result


def registry_addresses(shard: live.Shard, elsewhere: set[str] | None = None) -> dict[str, bool]:
    """Every setpoint, readback and config address of the shard's PVs, setpoints first.

    A PV belongs to the shard of its setpoint address, so all its addresses live together.
    The order is the subscription order at start-up: setpoints, what snapshots and restores
    need, reach Redis first. (A dict: ordered, True for setpoints, and a set for every other
    purpose.) `elsewhere`, if given, receives the addresses of the other shards' PVs.
    """
    setpoints: dict[str, bool] = {}
    others: dict[str, bool] = {}
    for setpoint, readback, config in PV.objects.values_list(
        "setpoint_address", "readback_address", "config_address"
    ).iterator(chunk_size=10_000):
        if shard.owns(setpoint):
            setpoints[setpoint] = True
            if readback:
                others[readback] = False
            if config:
                others[config] = False
        elif elsewhere is not None:
            elsewhere.update(address for address in (setpoint, readback, config) if address)
    # An address that is one PV's setpoint and another's readback counts as a setpoint.
    return setpoints | {address: False for address in others if address not in setpoints}


def registry_signature() -> tuple:
    """Changes whenever a PV is added, edited or deleted (edits bump updated_at)."""
    row = PV.objects.aggregate(count=Count("id"), latest=Max("updated_at"), ids=Sum("id"))
    return row["count"], row["latest"], row["ids"]


class Monitor:
    """One shard's monitor. Drive it with :meth:`run`, or step by step in tests."""

    def __init__(
        self,
        settings: MonitorSettings | None = None,
        client: redis.Redis | None = None,
        channels: Callable[[], ChannelSet] | None = None,
    ):
        """`channels` makes the leader's channel set (a test's may reach its own pvAccess server);
        by default a pvs.channels.ChannelSet on the process's clients."""
        self.settings = settings or MonitorSettings()
        self._make_channels = channels
        self.client = client or live.redis_client()
        self.lease = live.Lease(self.client, self.settings.shard, self.settings.owner, ttl=self.settings.lease_ttl)
        self.writer = live.FencedWriter(self.client, self.lease)
        self.channels: ChannelSet | None = None
        self.addresses: set[str] = set()
        self._signature: tuple | None = None
        self._latest: dict[str, Value] = {}
        self._hosts: dict[str, str] = {}
        # A pvAccess channel connected since the servers were last looked up (_name_pva_servers).
        self._pva_connected = False
        self._pending: dict[str, Value] = {}
        self._pending_meta: dict[str, live.LiveMeta] = {}
        self._pending_deletes: set[str] = set()
        self._added_at: dict[str, float] = {}
        self._first_stage: set[str] = set()  # setpoints still without a first value at start-up
        self._deferred: list[str] = []  # addresses waiting for them (see MonitorSettings.stage_timeout)
        self._deferred_until = 0.0
        self._elsewhere: set[str] = set()  # the other shards' addresses, as of the last registry load
        self._stats = _Stats()
        self._next = {"flush": 0.0, "registry": 0.0, "heartbeat": 0.0, "grace": 0.0}
        self.started = time.time()

    @property
    def is_leader(self) -> bool:
        return self.lease.held

    # Leadership ---------------------------------------------------------------------------

    def try_lead(self) -> bool:
        """Take the shard's lease if it is free; on success, connect every address."""
        if not self.lease.acquire():
            return False
        log.info(
            "Shard %s: leader (%s, fencing token %s)", self.settings.shard.label, self.settings.owner, self.lease.token
        )
        self.channels = (self._make_channels or ChannelSet)()
        self._signature = None
        self.sync_registry()
        self.delete_orphans()
        return True

    def delete_orphans(self, min_age: float = 10.0) -> int:
        """Delete cached addresses that no registry PV uses, and that nobody wrote for `min_age` s.

        A previous leader that died (or lost its lease) with deletions not yet flushed leaves
        such fields behind. Uses the registry sync_registry just loaded; the age guard spares a
        value another shard's monitor has just written for a PV added after that.
        """
        if self._signature is None:
            return 0  # the registry could not be loaded: nothing to compare with
        everywhere = self.addresses | self._elsewhere
        try:
            cached = live.cached_addresses(self.client)
        except redis.RedisError as exc:
            log.error("Could not look for orphaned live values: %s", exc)
            return 0
        candidates = [address for address in cached if address not in everywhere]
        if not candidates:
            return 0
        cutoff = time.time() - min_age
        values = live.read_values(candidates, self.client)
        orphans = [a for a, v in values.items() if v is None or v.received < cutoff]
        self._pending_deletes |= set(orphans)
        if orphans:
            log.info(
                "Shard %s: deleting %d live values of addresses no PV uses", self.settings.shard.label, len(orphans)
            )
        return len(orphans)

    def step_down(self, reason: str) -> None:
        """Stop writing and drop every channel; back to standby."""
        log.warning("Shard %s: stepping down: %s", self.settings.shard.label, reason)
        if self.channels is not None:
            self.channels.close()
        self.channels = None
        self.lease.held = False
        self.addresses = set()
        for state in (self._latest, self._hosts, self._pending, self._pending_meta, self._added_at):
            state.clear()
        self._pending_deletes.clear()
        self._first_stage.clear()
        self._deferred = []
        self._elsewhere = set()

    # Steps --------------------------------------------------------------------------------

    def sync_registry(self) -> bool:
        """Subscribe new addresses and drop removed ones if the registry changed; True if it did."""
        close_old_connections()
        try:
            signature = registry_signature()
            if signature == self._signature:
                return False
            elsewhere: set[str] = set()
            wanted = registry_addresses(self.settings.shard, elsewhere)
            self._elsewhere = elsewhere
        except DatabaseError as exc:
            log.error("Registry unavailable, keeping %d addresses: %s", len(self.addresses), exc)
            return False
        self._signature = signature
        added = [address for address in wanted if address not in self.addresses]
        removed = self.addresses - wanted.keys()
        if removed:
            self.channels.remove(removed)
            for address in removed:
                self._latest.pop(address, None)
                self._hosts.pop(address, None)
                self._pending.pop(address, None)
                self._pending_meta.pop(address, None)
                self._added_at.pop(address, None)
            # An address another shard's PV still uses (a shared read-back) stays in Redis.
            self._pending_deletes |= removed - elsewhere
            self._first_stage -= removed
            self._deferred = [address for address in self._deferred if address not in removed]
        if added:
            first = [address for address in added if wanted[address]]
            staged = self.settings.stage_timeout > 0 and len(added) >= self.settings.stage_minimum
            if staged and first and len(first) < len(added):
                self._deferred += [address for address in added if not wanted[address]]
                self._first_stage |= set(first)
                self._deferred_until = time.monotonic() + self.settings.stage_timeout
                added = first
            self._subscribe(added)
            self._pending_deletes -= set(added)
        self.addresses = set(wanted)
        if added or removed:
            log.info("Registry: %d addresses (+%d, -%d)", len(wanted), len(added), len(removed))
        return bool(added or removed)

    def _subscribe(self, addresses: list[str]) -> None:
        self.channels.add(addresses)
        self._added_at.update(dict.fromkeys(addresses, time.monotonic()))
        self._remember_hosts(addresses)

    def _remember_hosts(self, addresses: list[str]) -> None:
        """The IOC of each address as a previous leader last saw it connect (its metadata in Redis),
        so that an IOC down when this leader starts counts as that IOC disconnected, not as
        addresses no IOC ever answered (monitor.health.judge_connections). A new connection's own
        metadata replaces it."""
        try:
            metas = live.read_metadata(addresses, self.client)
        except redis.RedisError as exc:
            log.error("Could not read the known IOCs of %d addresses: %s", len(addresses), exc)
            return
        for address, meta in metas.items():
            if meta is not None and meta.host:
                self._hosts.setdefault(address, meta.host)

    def add_deferred(self) -> int:
        """Subscribe the second start-up stage once the first has its values or has had its time."""
        if not self._deferred or (self._first_stage and time.monotonic() < self._deferred_until):
            return 0
        deferred, self._deferred = self._deferred, []
        self._first_stage.clear()
        self._subscribe(deferred)
        self._pending_deletes -= set(deferred)
        log.info("Start-up: subscribed %d readback and config addresses", len(deferred))
        return len(deferred)

    def absorb(self, result: PollResult) -> None:
        """Keep the latest of what both protocols delivered, for the next flush."""
        pending, latest = self._pending, self._latest
        for reading in result.readings:
            value = reading
            pending[reading.address] = latest[reading.address] = value
        self._stats.received += len(result.readings)
        for metadata in result.metadata:
            self._pending_meta[metadata.address] = live.LiveMeta.from_metadata(metadata)
            self._hosts[metadata.address] = metadata.host
            self._pva_connected = self._pva_connected or metadata.address.startswith(PVA_PREFIX)
        now = time.time()
        for address in result.disconnected:
            self._added_at.pop(address, None)
            previous = latest.get(address)
            value = Value(
                address=address,
                kind=previous.kind if previous else "",
                value=previous.value if previous else None,
                status=previous.status if previous else 0,
                severity=previous.severity if previous else 0,
                timestamp=previous.timestamp if previous else 0.0,
                received=now,
                connected=False,
            )
            pending[address] = latest[address] = value
        for address in result.connected:
            self._added_at.pop(address, None)
        if self._first_stage and result.readings:
            self._first_stage.difference_update(reading.address for reading in result.readings)

    def mark_never_connected(self) -> int:
        """Write addresses that found no IOC within the grace period as disconnected."""
        cutoff = time.monotonic() - self.settings.connect_grace
        late = [a for a, added in self._added_at.items() if added <= cutoff and a not in self._latest]
        now = time.time()
        for address in late:
            del self._added_at[address]
            value = Value(address, "", None, 0, 0, 0.0, now, False)
            self._pending[address] = self._latest[address] = value
        return len(late)

    def flush(self) -> bool:
        """Write pending values, metadata and deletions; False if the lease was lost (fenced out)."""
        if not (self._pending or self._pending_meta or self._pending_deletes):
            return True
        values, meta, deletes = self._pending, self._pending_meta, self._pending_deletes
        try:
            accepted = self.writer.write(values, meta, deletes)
        except redis.RedisError as exc:
            log.error("Redis write failed, will retry: %s", exc)
            return True
        if not accepted:
            return False
        written_at = time.time()
        self._stats.written += len(values)
        self._stats.ages.extend(written_at - v.timestamp for v in values.values() if v.timestamp and v.connected)
        try:
            self.writer.publish_changes(list(values) + list(deletes))
        except redis.RedisError as exc:
            log.error("Change notice not published: %s", exc)
        self._pending, self._pending_meta, self._pending_deletes = {}, {}, set()
        return True

    def heartbeat(self) -> dict:
        """Renew the lease and publish this shard's health; returns the stats written."""
        received_rate, written_rate, p95_age = self._stats.take()
        # Every address has its first value (or its disconnected mark) in Redis: only then is
        # the cache this leader's and not a previous leader's (see snapshots.monitor_is_fresh).
        synced = not self._pending and self.addresses <= self._latest.keys()
        if synced:  # not while the cache fills: the look is the size of the channel set
            self._name_pva_servers()
        hosts: dict[str, list[int]] = {}
        connected = 0
        never: list[str] = []  # disconnected addresses no IOC has ever answered
        # Per protocol: addresses, connected, never connected (health shows pvAccess beside CA).
        protocols = {protocol: [0, 0, 0] for protocol in PROTOCOLS}
        for address, value in self._latest.items():
            host = self._hosts.get(address, "")
            entry = hosts.setdefault(host, [0, 0])
            entry[0 if value.connected else 1] += 1
            connected += value.connected
            counts = protocols[protocol_of(address)]
            counts[0] += 1
            counts[1] += value.connected
            if not host and not value.connected:
                never.append(address)
                counts[2] += 1
        stats = {
            "owner": self.settings.owner,
            "shard": self.settings.shard.label,
            "fencing_token": self.lease.token,
            "addresses": len(self.addresses),
            "connected": connected,
            "disconnected": len(self.addresses) - connected,
            "updates_per_s": round(received_rate, 1),
            "writes_per_s": round(written_rate, 1),
            "p95_age_s": round(p95_age, 4),
            "synced": synced,
            "hosts": hosts,
            "never_connected": heapq.nsmallest(NEVER_CONNECTED_LISTED, never),
            "protocols": {
                protocol: {"addresses": n, "connected": c, "never_connected": never_n}
                for protocol, (n, c, never_n) in protocols.items()
            },
            "started": self.started,
            "time": time.time(),
        }
        live.write_heartbeat(self.client, self.settings.shard, stats)
        return stats

    def _name_pva_servers(self) -> None:
        """Count each connected pvAccess address under its server, as Channel Access addresses
        are: the server a channel connected to is not in its first update (p4p does not say), so
        it is looked up (pvs.channels.ChannelSet.pva_peers, one look at every pvAccess channel:
        benchmarks/bench_pva_peers.py) at the first heartbeat of a synced cache after pvAccess
        channels connected, and kept, so that a server that goes away counts as that server disconnected."""
        if self.channels is None or not self._pva_connected:
            return
        self._pva_connected = False
        try:
            self._hosts.update(self.channels.pva_peers())
        except Exception:  # the heartbeat must be written; the counts wait for the next connection
            log.exception("Could not ask the pvAccess client which servers its channels are on")

    def step(self) -> bool:
        """One turn as leader: poll the channels, and do whichever chores are due. False if fenced out."""
        now = time.monotonic()
        timeout = max(0.0, min(self._next["flush"] - now, self.settings.flush_interval))
        # While the second start-up stage waits for the setpoints' values, metadata requests
        # would compete with them.
        self.channels.metadata_per_poll = 0 if self._deferred else METADATA_PER_POLL
        self.absorb(self.channels.poll(max(timeout, 0.001)))
        now = time.monotonic()
        if self._deferred:
            self.add_deferred()
        if now >= self._next["grace"]:
            self._next["grace"] = now + 0.5
            self.mark_never_connected()
        if now >= self._next["flush"]:
            self._next["flush"] = now + self.settings.flush_interval
            if not self.flush():
                return False
        if now >= self._next["heartbeat"]:
            self._next["heartbeat"] = now + self.settings.heartbeat_interval
            try:
                if not self.lease.renew():
                    return False
                self.heartbeat()
            except redis.RedisError as exc:
                log.error("Heartbeat failed: %s", exc)
        if now >= self._next["registry"]:
            self._next["registry"] = now + self.settings.registry_interval
            self.sync_registry()
        return True

    def run(self, stop: threading.Event) -> None:
        """Lead when possible, stand by otherwise, until `stop` is set; then leave cleanly."""
        log.info("Monitor %s for shard %s starting", self.settings.owner, self.settings.shard.label)
        # Under systemd (Type=notify, WatchdogSec): ready now, alive while this loop turns. A Redis
        # or PostgreSQL outage does not stop the loop (a restart would not bring them back).
        notify("READY=1")
        watchdog = Watchdog()
        try:
            while not stop.is_set():
                watchdog.alive()
                if not self.is_leader:
                    try:
                        if not self.try_lead():
                            stop.wait(self.settings.standby_interval)
                    except redis.RedisError as exc:
                        log.error("Redis unavailable: %s", exc)
                        stop.wait(self.settings.standby_interval)
                    continue
                if not self.step():
                    self.step_down("the lease is held by another monitor")
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        """Flush what is pending, release the lease and clear the channels."""
        if self.is_leader:
            try:
                self.flush()
                self.lease.release()
            except redis.RedisError as exc:
                log.error("Could not release the lease cleanly: %s", exc)
        if self.channels is not None:
            self.channels.close()
            self.channels = None
        log.info("Monitor %s stopped", self.settings.owner)
