"""Time API requests at 50,000 PVs through Django's test client (server side: middleware,
authentication, queries, serialization and JSON rendering, no network).

    .venv/bin/python benchmarks/bench_api_reads.py [--pvs 50000] [--repeat 5] [--jobs 2000] [--full 10] [--profile]

Uses the database `squirrel_bench_api` (SQUIRREL_DB_NAME overrides it; created and migrated if
missing, its registry, snapshots and jobs emptied) and Redis database 13 (SQUIRREL_REDIS_URL
overrides it; FLUSHDB'd first): never point either at data you care about. Requests carry a knox
token, as scripts send them. `--profile` prints where the values page spends its time.
"""

import argparse
import cProfile
import os
import pstats
import random
import statistics
import sys
import time
from pathlib import Path

import smoke

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "squirrel_site.settings")
os.environ.setdefault("SQUIRREL_DB_NAME", "squirrel_bench_api")
os.environ.setdefault("SQUIRREL_SECRET_KEY", "benchmark-only")
os.environ.setdefault("SQUIRREL_REDIS_URL", "redis://127.0.0.1:6379/13")
os.environ.setdefault("SQUIRREL_ALLOWED_HOSTS", "testserver")

import django

django.setup()

from bench_compare import machine_state, write_cache  # noqa: E402
from bench_import import create_database, empty_registry, registry_csv  # noqa: E402
from bench_snapshot import empty_snapshots  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from knox.models import AuthToken  # noqa: E402
from rest_framework.renderers import JSONRenderer  # noqa: E402

from jobs.models import Job, JobStatus, JobType  # noqa: E402
from monitor import live  # noqa: E402
from pvs.importers import import_pvs  # noqa: E402
from pvs.models import PV  # noqa: E402
from snapshots.capture.api.serializers import SnapshotValueSerializer  # noqa: E402
from snapshots.capture.api.value_rows import api_rows  # noqa: E402
from snapshots.capture.services import take_snapshot  # noqa: E402
from squirrel_site.renderers import FastJSONRenderer  # noqa: E402


def fill_cache(client) -> None:
    """Live values of every setpoint and readback (floats, ints, enums, strings, 100-element
    waveforms; a readback holds its setpoint's value) and a fresh monitor heartbeat."""
    pairs = list(PV.objects.order_by("id").values_list("setpoint_address", "readback_address"))
    state = machine_state([setpoint for setpoint, _ in pairs], random.Random(5), None, 0.0)
    state |= {readback: state[setpoint] for setpoint, readback in pairs if readback}
    write_cache(client, state)


def cache_snapshot(client, title: str, user, pvs=None):
    """A snapshot from the cache, its monitor heartbeat renewed first (it expires after 10 s)."""
    live.write_heartbeat(client, live.Shard(0, 1), {"synced": True})
    return take_snapshot(title=title, created_by=user, mode="cache", pvs=pvs)


def empty_jobs() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {Job._meta.db_table} RESTART IDENTITY CASCADE")


def make_jobs(user, count: int) -> None:
    """`count` finished snapshot jobs, as a busy week of scheduled snapshots leaves them."""
    Job.objects.bulk_create(
        Job(
            type=JobType.SNAPSHOT,
            status=JobStatus.SUCCEEDED,
            progress=100,
            created_by=user,
            result_id=i,
            data={"title": f"Scheduled {i}", "mode": "cache", "selection": {}},
        )
        for i in range(count)
    )


def measure(client: Client, url: str, repeat: int) -> tuple[float, float, float, int, int]:
    """(median ms, fastest ms, median CPU ms of this process, response bytes, queries) of `repeat`
    GETs of `url`, after one warm-up. The CPU time leaves out the time spent waiting for a core
    (other processes on the machine) and PostgreSQL's own work."""
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code, response.content[:300])
    times, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        response = client.get(url)
        times.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    return statistics.median(times), min(times), statistics.median(cpu), len(response.content), len(queries)


def stages(snapshot, repeat: int) -> dict[str, float]:
    """Seconds (median) of each stage of the values page, outside the request."""
    times: dict[str, list[float]] = {}
    for _ in range(repeat):
        start = time.perf_counter()
        page = {"next": None, "previous": None, "results": list(api_rows(snapshot.values.order_by("id")))}
        fetched = time.perf_counter()
        FastJSONRenderer().render(page)
        rendered = time.perf_counter()
        JSONRenderer().render(page)
        for stage, seconds in (
            ("query, fetch, rows to dicts (api_rows)", fetched - start),
            ("JSON with ujson (FastJSONRenderer)", rendered - fetched),
            ("JSON with json, for comparison (JSONRenderer)", time.perf_counter() - rendered),
        ):
            times.setdefault(stage, []).append(seconds)
    return {stage: statistics.median(seconds) for stage, seconds in times.items()}


def serialized(snapshot) -> float:
    """Seconds to read and write the page as the endpoint did before value_rows: model instances,
    SnapshotValueSerializer and DRF's JSONRenderer."""
    start = time.perf_counter()
    data = SnapshotValueSerializer(snapshot.values.order_by("id"), many=True).data
    JSONRenderer().render({"next": None, "previous": None, "results": data})
    return time.perf_counter() - start


def profile(client: Client, url: str) -> None:
    profiler = cProfile.Profile()
    profiler.runcall(client.get, url)
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pvs", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--full", type=int, default=10, help="full snapshots in the archive")
    parser.add_argument("--profile", action="store_true")
    args = smoke.parse_args(parser, pvs=500, repeat=1, jobs=60, full=2)
    create_database()
    empty_jobs()
    empty_snapshots()
    empty_registry()
    assert import_pvs("bench.csv", registry_csv(args.pvs), dry_run=False).ok
    redis = live.redis_client()
    redis.flushdb()
    fill_cache(redis)
    user, _ = get_user_model().objects.get_or_create(username="bench", defaults={"is_superuser": True})
    AuthToken.objects.filter(user=user).delete()
    _, token = AuthToken.objects.create(user=user)
    # An archive of full snapshots, the middle one read (its values are neither the table's first
    # nor its last rows), and enough small ones that the snapshot list has more than one page.
    few = PV.objects.filter(id__in=PV.objects.order_by("id").values("id")[:100])
    full = [cache_snapshot(redis, f"full {i}", user) for i in range(args.full)]
    for i in range(max(0, 60 - args.full)):
        cache_snapshot(redis, f"small {i}", user, few)
    snapshot = full[len(full) // 2]
    assert snapshot.values.filter(connected=True).count() == args.pvs - args.pvs // 500
    make_jobs(user, args.jobs)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")

    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    values_url = f"/api/v1/snapshots/{snapshot.id}/values/"
    cases = [
        (f"values of one snapshot, page_size={args.pvs}", f"{values_url}?page_size={args.pvs}"),
        ("values, default page (1000)", values_url),
        ("snapshot list, first page (50)", "/api/v1/snapshots/"),
        ("jobs list, first page (50)", "/api/v1/jobs/"),
        ("live values, first page (500)", "/api/v1/live/"),
        ("health (no token needed)", "/api/v1/health/"),
    ]
    print(
        f"{args.pvs:,} PVs; {args.full} full snapshots and {max(0, 60 - args.full)} small ones; "
        f"{args.jobs:,} jobs; median of {args.repeat} requests; load average {os.getloadavg()[0]:.2f} (2 cores)"
    )
    for label, url in cases:
        live.write_heartbeat(redis, live.Shard(0, 1), {"synced": True})
        median, fastest, cpu, size, queries = measure(client, url, args.repeat)
        print(
            f"  {label:<44} {median:8.1f} ms (fastest {fastest:7.1f}, CPU {cpu:7.1f})  {size / 1024:9,.0f} KiB  "
            f"{queries} queries"
        )
    print(f"  the page of {args.pvs:,} values, by stage (median of {args.repeat}):")
    for stage, seconds in stages(snapshot, args.repeat).items():
        print(f"    {stage:<46} {seconds * 1000:8.1f} ms")
    print(f"    {'as before: SnapshotValueSerializer and json':<46} {serialized(snapshot) * 1000:8.1f} ms (one run)")
    if args.profile:
        profile(client, cases[0][1])


if __name__ == "__main__":
    main()
