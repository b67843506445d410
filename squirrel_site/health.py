"""Health of one web instance and of what it depends on, for GET /api/v1/health/.

The web instance can serve when PostgreSQL and Redis answer; the monitor and the workers are
reported beside that and only fail the check when the caller asks for strict readiness (see
docs/operations.md for why). Everything here is a quick read: one `SELECT 1`, a PING and the
heartbeats in Redis; no broadcast to the workers. Errors are reported by their class name only: a
database error's message can carry host names, user names and configuration.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import redis
from django.conf import settings
from django.db import DatabaseError, connection

from monitor import health as monitor_health
from monitor import live
from pvs.protocols import PROTOCOLS

OK, DEGRADED = monitor_health.OK, monitor_health.DEGRADED  # one word for both reports
UNAVAILABLE = "unavailable"
UNKNOWN = "unknown"  # the monitor and the workers while Redis cannot be reached


def _timed(check: Callable[[], object], errors: tuple[type[Exception], ...]) -> dict:
    """{"ok", "latency_ms"} of running `check`, with "error" (the class name) if it raised."""
    start = time.perf_counter()
    try:
        check()
    except errors as exc:
        return {"ok": False, "latency_ms": _ms_since(start), "error": type(exc).__name__}
    return {"ok": True, "latency_ms": _ms_since(start)}


def _ms_since(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)


def _select_one() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_database() -> dict:
    """One `SELECT 1` (with the connection's set-up when this request opened it)."""
    return _timed(_select_one, (DatabaseError,))


def check_redis(client) -> dict:
    """One PING."""
    return _timed(client.ping, (redis.RedisError,))


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")


def monitor_report(client) -> dict:
    """Each monitor shard: its status (ok, degraded, stale, missing), leader, heartbeat age, stats,
    the IOCs with fewer than settings.HEALTH_MIN_CONNECTED of their addresses connected and the
    addresses no IOC ever answered."""
    shards = [
        monitor_health.judge_connections(shard, settings.HEALTH_MIN_CONNECTED)
        for shard in monitor_health.monitor_shards(client=client)
    ]
    return {"status": monitor_health.overall_status(shards), "shards": [_shard_json(shard) for shard in shards]}


def _shard_json(shard: monitor_health.ShardHealth) -> dict:
    beat = shard.beat or {}
    return {
        "shard": shard.shard,
        "status": shard.status,
        "leader": beat.get("owner"),
        "heartbeat_age_s": None if shard.age is None else round(shard.age, 3),
        "synced": beat.get("synced"),
        "addresses": beat.get("addresses"),
        "connected": beat.get("connected"),
        "updates_per_s": beat.get("updates_per_s"),
        "lag_p95_s": beat.get("p95_age_s"),
        "degraded_iocs": list(shard.degraded_iocs),
        "never_connected": {"count": shard.never_connected, "addresses": list(shard.never_connected_addresses)},
        "protocols": _protocols(beat.get("protocols")),
    }


def _protocols(counts) -> dict:
    """The heartbeat's counts per protocol ("ca", "pva": addresses, connected, never connected),
    zeros where a heartbeat (an older monitor's) has none."""
    counts = counts if isinstance(counts, dict) else {}
    fields = ("addresses", "connected", "never_connected")
    result = {}
    for protocol in PROTOCOLS:
        given = counts.get(protocol) if isinstance(counts.get(protocol), dict) else {}
        result[protocol] = {field: given[field] if isinstance(given.get(field), int) else 0 for field in fields}
    return result


def workers_report(client, now: float) -> dict:
    """The Celery workers whose heartbeat has not expired (monitor.worker_heartbeat), and when each
    was last seen."""
    workers = [
        {
            "name": beat.get("name"),
            "pid": beat.get("pid"),
            "concurrency": beat.get("concurrency"),
            "active": beat.get("active"),
            "last_seen": _iso(beat["written_at"]),
            "age_s": round(max(0.0, now - beat["written_at"]), 3),
        }
        for beat in live.read_worker_heartbeats(client)
    ]
    return {"status": OK if workers else monitor_health.MISSING, "count": len(workers), "workers": workers}


def health_report() -> dict:
    """The whole report; `status` is unavailable when this instance cannot serve (database or
    Redis down), degraded when the monitor is not ok (stale, missing, or too few addresses
    connected) or no worker is alive, else ok."""
    now = time.time()
    client = live.redis_client()
    database, redis_check = check_database(), check_redis(client)
    monitor = {"status": UNKNOWN, "shards": []}
    workers = {"status": UNKNOWN, "count": None, "workers": []}
    if redis_check["ok"]:
        try:
            monitor, workers = monitor_report(client), workers_report(client, now)
        except redis.RedisError:
            pass  # Redis went away since the PING: both stay unknown
    if not (database["ok"] and redis_check["ok"]):
        status = UNAVAILABLE
    elif monitor["status"] != OK or workers["status"] != OK:
        status = DEGRADED
    else:
        status = OK
    return {
        "status": status,
        "checked_at": _iso(now),
        "database": database,
        "redis": redis_check,
        "monitor": monitor,
        "workers": workers,
    }


def http_status(report: dict, *, strict: bool = False) -> int:
    """503 when this instance cannot serve; with `strict` (readiness of the whole system) also
    when the report is degraded; else 200."""
    if report["status"] == UNAVAILABLE or (strict and report["status"] != OK):
        return 503
    return 200
