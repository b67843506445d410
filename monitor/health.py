"""Whether the monitor keeps the live cache current, judged from its shards' heartbeats, and
whether it reaches the IOCs.

One rule for everyone: the health endpoint reports it, and snapshots and restore previews read
the cache only when it says ok (snapshots.capture.services.monitor_is_fresh). Connectivity is judged
apart (judge_connections, for the health report only): a fresh cache that says an IOC is
disconnected is still the truth, and a direct read would find the same.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from monitor import live

OK, DEGRADED, STALE, MISSING = "ok", "degraded", "stale", "missing"
_RANK = {OK: 0, DEGRADED: 1, STALE: 2, MISSING: 3}

# A leader writes its heartbeat every second (monitor.MonitorSettings.heartbeat_interval).
MAX_HEARTBEAT_AGE = 5.0


@dataclass(frozen=True)
class ShardHealth:
    """One shard: ok (recent heartbeat, every address has its first value), stale (old heartbeat,
    or a new leader still filling the cache) or missing (no heartbeat, while other shards of the
    same split have one); `beat` is its latest heartbeat as written, `age` its age in seconds."""

    shard: str
    status: str
    beat: dict | None = None
    age: float | None = None
    # judge_connections: the IOCs with too few of their addresses connected; the addresses that
    # no IOC has ever answered (how many, and the first of them by name).
    degraded_iocs: tuple[dict, ...] = ()
    never_connected: int = 0
    never_connected_addresses: tuple[str, ...] = ()


def judge_shards(beats: list[dict], now: float, max_age: float = MAX_HEARTBEAT_AGE) -> list[ShardHealth]:
    """The health of every shard with a heartbeat (live.read_heartbeats), and of the shards missing
    from a split ("0of2" without "1of2"), ordered by label."""
    shards, seen = [], {}
    for beat in beats:
        label = str(beat.get("shard", ""))
        try:
            shard = live.Shard.from_label(label)
            age = max(0.0, now - float(beat["written_at"]))
        except (KeyError, TypeError, ValueError):
            shards.append(ShardHealth(label, STALE, beat))  # not written by this version's monitor
            continue
        seen.setdefault(shard.count, set()).add(shard.index)
        fresh = age <= max_age and bool(beat.get("synced"))
        shards.append(ShardHealth(label, OK if fresh else STALE, beat, age))
    for count, indices in seen.items():
        shards += [ShardHealth(live.Shard(i, count).label, MISSING) for i in range(count) if i not in indices]
    return sorted(shards, key=lambda shard: shard.shard)


def judge_connections(shard: ShardHealth, min_connected: float) -> ShardHealth:
    """`shard`, degraded if it is ok but fewer than `min_connected` (a fraction) of its addresses,
    or of one IOC's, are connected; the IOCs below the fraction are listed either way.

    The heartbeat's "hosts" maps each IOC ("host:port") to [connected, disconnected] addresses;
    addresses that no IOC has ever answered (as far as the monitor and, through the metadata it
    keeps in Redis, its previous leaders know) are under "". Those are no IOC: a PV whose address
    has no server (a typo, a retired IOC) is reported as never connected, by count and the first
    addresses ("never_connected" in the heartbeat), and degrades the shard only through the whole
    shard's fraction (nothing connected at all, say). An IOC that answered and went away counts
    under its own name, and degrades the shard.
    """
    beat = shard.beat or {}
    iocs, never = [], 0
    for host, counts in sorted((beat.get("hosts") or {}).items()):
        try:
            connected, disconnected = (int(count) for count in counts)
        except (TypeError, ValueError):
            continue  # not written by this version's monitor: the report must still answer
        if not host:
            never = disconnected
        elif _below(connected, connected + disconnected, min_connected):
            iocs.append({"host": host, "connected": connected, "disconnected": disconnected})
    listed = beat.get("never_connected")
    addresses = tuple(str(a) for a in listed) if isinstance(listed, list) else ()
    few = _below(beat.get("connected") or 0, beat.get("addresses") or 0, min_connected)
    status = DEGRADED if shard.status == OK and (few or iocs) else shard.status
    return replace(
        shard, status=status, degraded_iocs=tuple(iocs), never_connected=never, never_connected_addresses=addresses
    )


def _below(connected: int, total: int, fraction: float) -> bool:
    return total > 0 and connected < fraction * total


def overall_status(shards: list[ShardHealth]) -> str:
    """The worst shard's status; missing when no shard has a heartbeat at all."""
    if not shards:
        return MISSING
    return max((shard.status for shard in shards), key=_RANK.__getitem__)


def monitor_shards(max_age: float = MAX_HEARTBEAT_AGE, client=None) -> list[ShardHealth]:
    """Every shard's health now, from Redis (raises redis.RedisError when it cannot be reached)."""
    return judge_shards(live.read_heartbeats(client), time.time(), max_age)
