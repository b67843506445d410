"""Time the snapshot page (and the live table) on a 50,000-PV snapshot, through the test client.

    .venv/bin/python benchmarks/bench_pages.py [--pvs 50000] [--repeat 5] [--explain]
        [--stats none|stale|fresh]

Uses the database `squirrel_bench` (SQUIRREL_DB_NAME overrides it; dropped and created again)
and Redis database 14 (SQUIRREL_REDIS_URL overrides it; FLUSHDB'd first): never point either at
data you care about. `--explain` prints the plans of the page queries (EXPLAIN ANALYZE). A
snapshot is taken before the one shown (the earlier work of bench_stats); --stats says when
ANALYZE runs, stale by default.
"""

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "squirrel_site.settings")
os.environ.setdefault("SQUIRREL_DB_NAME", "squirrel_bench")
os.environ.setdefault("SQUIRREL_SECRET_KEY", "benchmark-only")
os.environ.setdefault("SQUIRREL_REDIS_URL", "redis://127.0.0.1:6379/14")
os.environ.setdefault("SQUIRREL_ALLOWED_HOSTS", "testserver")

import django
from django.conf import settings

django.setup()
# Pages render {% static %} links; the benchmark runs without collectstatic's manifest.
settings.STORAGES = {
    **settings.STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

import bench_stats  # noqa: E402
import smoke  # noqa: E402
from bench_import import create_database, registry_csv, timed  # noqa: E402
from bench_snapshot import fill_cache  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import reverse  # noqa: E402

from monitor import live  # noqa: E402
from pvs.importers import import_pvs  # noqa: E402
from pvs.models import PV  # noqa: E402
from snapshots.capture.services import take_snapshot  # noqa: E402
from tags.models import Tag  # noqa: E402


def cases(snapshot_id: int, tag_id: int) -> list[tuple[str, str, dict]]:
    detail = reverse("snapshots:detail", args=[snapshot_id])
    return [
        ("snapshot page 1, by name", detail, {}),
        ("snapshot page 250, by name", detail, {"page": 250}),
        ("snapshot page 500 (last), by name", detail, {"page": 500}),
        ("snapshot page 1, by device", detail, {"sort": "device"}),
        ("snapshot page 250, by -severity", detail, {"sort": "-severity", "page": 250}),
        ("snapshot page 1, tag (1 of 20)", detail, {"tag": tag_id}),
        ("snapshot page 1, name contains", detail, {"name": "DEV1"}),
        ("snapshot page 1, out of tolerance vs live", detail, {"out_of_tolerance": "on"}),
        ("snapshot page 1, disconnected now", detail, {"connection": "live"}),
        ("live table page 1", reverse("pvs:live"), {}),
        ("live table page 400", reverse("pvs:live"), {"page": 400}),
        ("live table page 1, tag", reverse("pvs:live"), {"tag": tag_id}),
    ]


def explain(client: Client, url: str, query: dict) -> None:
    """EXPLAIN ANALYZE the statements a page runs that touch snapshot values or PVs."""
    with CaptureQueriesContext(connection) as captured:
        client.get(url, query)
    for statement in captured.captured_queries:
        sql = statement["sql"]
        if "snapshotvalue" not in sql and 'FROM "pvs_pv"' not in sql:
            continue
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS off) {sql}")
            plan = "\n".join(f"      {row[0]}" for row in cursor.fetchall())
        print(f"    {sql[:160]}…\n{plan}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pvs", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--explain", action="store_true")
    bench_stats.add_argument(parser)
    args = smoke.parse_args(parser, pvs=300, repeat=1)
    create_database(new=True)
    assert import_pvs("bench.csv", registry_csv(args.pvs), dry_run=False).ok
    redis = live.redis_client()
    redis.flushdb()
    fill_cache(redis, list(PV.objects.values_list("setpoint_address", "readback_address")))
    user, _ = get_user_model().objects.get_or_create(username="bench", defaults={"is_superuser": True})
    take_snapshot(title="earlier", created_by=user, mode="cache")
    stats = bench_stats.Statistics(args.stats)
    stats.history_done()
    snapshot = take_snapshot(title="bench", created_by=user, mode="cache")
    # Every live value moves (the cache refilled one PV along): the worst case of "out of tolerance".
    addresses = list(PV.objects.order_by("id").values_list("setpoint_address", "readback_address"))
    redis.delete(live.lease_key(live.Shard(0, 1)))
    fill_cache(redis, addresses[1:] + addresses[:1])
    stats.before_timing()
    client = Client()
    client.force_login(user)
    tag = Tag.objects.order_by("id").first()
    print(
        f"{args.pvs} PVs, snapshot of {snapshot.pv_count} values; statistics {args.stats}; "
        f"median of {args.repeat} requests; load average {os.getloadavg()[0]:.2f}:"
    )
    for name, url, query in cases(snapshot.id, tag.id):
        times = []
        for _ in range(args.repeat):
            live.write_heartbeat(redis, live.Shard(0, 1), {"synced": True})
            response = {}
            times.append(
                timed(lambda response=response, url=url, query=query: response.update(r=client.get(url, query)))
            )
            assert response["r"].status_code == 200, response["r"].status_code
        rows = response["r"].content.count(b"<tr data-pv=")
        print(f"  {name:<48} {statistics.median(times) * 1000:7.1f} ms  ({rows} rows)")
        if args.explain:
            explain(client, url, query)


if __name__ == "__main__":
    main()
