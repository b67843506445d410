"""Time a cache snapshot of 50,000 PVs (with readbacks) and reading its values back.

    .venv/bin/python benchmarks/bench_snapshot.py [--pvs 50000] [--repeat 5] [--stats none|stale|fresh]
        [--protocol ca|pva|mixed]

Uses the database `squirrel_bench` (SQUIRREL_DB_NAME overrides it; dropped and created again)
and Redis database 14 (SQUIRREL_REDIS_URL overrides it; FLUSHDB'd first): never point either at
data you care about. One snapshot is taken before the measured ones (the earlier work of
bench_stats); --stats says when ANALYZE runs, stale by default. --protocol: the registry's
addresses are Channel Access (ca, the default), ``pva://`` (pva: setpoints and read-backs), or
every other PV's pvAccess (mixed); the cache holds them under the same spellings, as the monitor
writes them. (The direct snapshot of each protocol, from the servers: bench_restore.py.)
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "squirrel_site.settings")
os.environ.setdefault("SQUIRREL_DB_NAME", "squirrel_bench")
os.environ.setdefault("SQUIRREL_SECRET_KEY", "benchmark-only")
os.environ.setdefault("SQUIRREL_REDIS_URL", "redis://127.0.0.1:6379/14")

import django

django.setup()

import bench_stats  # noqa: E402
import smoke  # noqa: E402
from bench_import import create_database, registry_csv, timed  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402

from monitor import live  # noqa: E402
from pvs.importers import import_pvs  # noqa: E402
from pvs.models import PV  # noqa: E402
from snapshots.capture.services import take_snapshot  # noqa: E402
from snapshots.models import Snapshot, SnapshotValue  # noqa: E402
from squirrel_site.epics_values import Value  # noqa: E402

ENUM_LABELS = ["Off", "On", "Fault"]


def fill_cache(client, addresses: list[tuple[str, str]]) -> int:
    """Live values and metadata for every setpoint and readback, a fresh heartbeat; the count."""
    lease = live.Lease(client, live.Shard(0, 1), "bench", ttl=60.0)
    assert lease.acquire()
    writer = live.FencedWriter(client, lease)
    now = time.time()
    values, metadata = {}, {}
    for i, (setpoint, readback) in enumerate(addresses):
        # Mostly floats, as a machine is; some ints and enums, a few disconnected.
        kind, value = ("enum", i % 3) if i % 10 == 0 else ("int", i) if i % 10 == 1 else ("float", i * 0.001)
        connected = i % 500 != 7
        values[setpoint] = Value(setpoint, kind, value if connected else None, 0, 0, now - 60, now - 1, connected)
        metadata[setpoint] = live.LiveMeta(
            "mA", 3, ENUM_LABELS if kind == "enum" else None, -10.0, 10.0, "127.0.0.1:5064", kind, 1, True, True
        )
        if readback:
            values[readback] = Value(readback, kind, value, 0, 0, now - 60, now - 1, True)
    assert writer.write(values, metadata)
    live.write_heartbeat(client, live.Shard(0, 1), {"synced": True})
    return len(values)


def as_pva(every: int) -> None:
    """Address every `every`-th PV's setpoint and read-back over pvAccess (``pva://``)."""
    table = PV._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET setpoint_address = 'pva://' || setpoint_address, "
            f"readback_address = CASE WHEN readback_address = '' THEN '' ELSE 'pva://' || readback_address END "
            f"WHERE id %% %s = 0",
            [every],
        )


def empty_snapshots() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {SnapshotValue._meta.db_table}, {Snapshot._meta.db_table} RESTART IDENTITY CASCADE")


def read_back(snapshot: Snapshot) -> int:
    """A snapshot's values the way a compare or restore would, as rows; the row count."""
    columns = [
        "pv_id",
        "pv_name",
        "value_type",
        "setpoint_num",
        "setpoint_str",
        "setpoint_array",
        "readback_num",
        "severity",
        "timestamp",
        "connected",
    ]
    return len(list(SnapshotValue.objects.filter(snapshot=snapshot).values_list(*columns)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pvs", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--protocol", choices=("ca", "pva", "mixed"), default="ca", help="the addresses' protocol")
    bench_stats.add_argument(parser)
    args = smoke.parse_args(parser, pvs=300, repeat=1, protocol="mixed")
    create_database(new=True)
    # Two thirds of the PVs have a readback, as in a typical registry.
    lines = registry_csv(args.pvs).decode().splitlines()
    lines[1:] = [line if i % 3 else ",,".join(line.split(",", 2)[::2]) for i, line in enumerate(lines[1:])]
    assert import_pvs("bench.csv", "\n".join(lines) + "\n", dry_run=False).ok
    if args.protocol != "ca":
        as_pva(every=1 if args.protocol == "pva" else 2)
    client = live.redis_client()
    client.flushdb()
    addresses = list(PV.objects.values_list("setpoint_address", "readback_address"))
    cached = fill_cache(client, addresses)
    user, _ = get_user_model().objects.get_or_create(username="bench", defaults={"is_superuser": True})
    take_snapshot(title="earlier", created_by=user, mode="cache")
    stats = bench_stats.Statistics(args.stats)
    stats.history_done()

    totals, stages, reads = [], {}, []
    for run in range(args.repeat):
        stats.before_timing()
        live.write_heartbeat(client, live.Shard(0, 1), {"synced": True})
        result = {}
        totals.append(
            timed(
                lambda result=result, run=run: result.update(
                    snapshot=take_snapshot(title=f"bench {run}", created_by=user, mode="cache")
                )
            )
        )
        snapshot = result["snapshot"]
        assert snapshot.pv_count == args.pvs and snapshot.values.filter(source="cache").count() == args.pvs
        for stage, seconds in snapshot.timings.items():
            stages.setdefault(stage, []).append(seconds)
        rows = {}
        reads.append(timed(lambda rows=rows, snapshot=snapshot: rows.update(n=read_back(snapshot))))
        assert rows["n"] == args.pvs
    print(
        f"{args.pvs} PVs ({args.protocol}), {cached} cached addresses, {snapshot.disconnected_count} disconnected; "
        f"statistics {args.stats}; median of {args.repeat} runs; load average {os.getloadavg()[0]:.2f}:"
    )
    print(f"  {'take_snapshot(mode=cache), request to commit':<48} {statistics.median(totals):6.3f} s")
    for stage, seconds in stages.items():
        print(f"    {stage:<46} {statistics.median(seconds):6.3f} s")
    print(f"  {'read one snapshot back (values_list)':<48} {statistics.median(reads):6.3f} s")


if __name__ == "__main__":
    main()
