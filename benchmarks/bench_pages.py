"""Time the pages (snapshot, live table, compare, restore preview, jobs, restores, PV sets,
snapshot list) at 50,000 PVs, through the test client.

    .venv/bin/python benchmarks/bench_pages.py [--pvs 50000] [--repeat 5] [--explain]
        [--stats none|stale|fresh] [--only SUBSTRING ...]

Uses the database `squirrel_bench` (SQUIRREL_DB_NAME overrides it; dropped and created again)
and Redis database 14 (SQUIRREL_REDIS_URL overrides it; FLUSHDB'd first): never point either at
data you care about. `--explain` prints the plans of the page queries (EXPLAIN ANALYZE). A
snapshot is taken before the one shown (the earlier work of bench_stats); --stats says when
ANALYZE runs, stale by default. What the measured pages show is written after it: six more
snapshots (the N-way columns), a restore preview of every PV, --pvs jobs, --pvs / 10 restores
(half of them undos), --pvs / 25 metadata-only snapshots (half of them undo points) and a PV set
of --pvs / 5 explicit PVs. `--only` (repeatable) times the cases whose name contains one of them.
"""

import argparse
import os
import statistics
import sys
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
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
from django.utils import timezone  # noqa: E402

from jobs.models import Job, JobStatus, JobType  # noqa: E402
from monitor import live  # noqa: E402
from pvs.importers import import_pvs  # noqa: E402
from pvs.models import PV, PVSet  # noqa: E402
from snapshots.capture.models import Snapshot, SnapshotOrigin  # noqa: E402
from snapshots.capture.services import take_snapshot  # noqa: E402
from snapshots.restore.models import Restore, RestorePreview, RestoreStatus  # noqa: E402
from snapshots.restore.preview import preview_restore  # noqa: E402
from tags.models import Tag  # noqa: E402


@dataclass
class Case:
    name: str
    url: str
    query: dict = field(default_factory=dict)
    method: str = "get"
    status: int = 200


# The cache's heartbeat may be older than take_snapshot's 5 s when the snapshot reads it: on a
# loaded machine writing 50,000 values takes longer, and the snapshots were then read over
# Channel Access (no IOC: every value disconnected, nothing left to compare).
CACHE_AGE = 3600.0


def cases(ids: dict) -> list[Case]:
    """The pages measured; `ids` names the rows they show (see `history`)."""
    detail = reverse("snapshots:detail", args=[ids["snapshot"]])
    compare, tag = reverse("snapshots:compare"), ids["tag"]
    three = {"a": ids["snapshot"], "b": [*ids["columns"][:2], "live"]}
    eight = {"a": ids["snapshot"], "b": [*ids["columns"][:7], "live"]}
    preview = reverse("snapshots:restore_preview", args=[ids["preview"]])
    pv_set = reverse("pvs:pv_set", args=[ids["pv_set"]])
    edit = reverse("snapshots:edit", args=[ids["snapshot"]])
    jobs, restores, snapshots = reverse("jobs:list"), reverse("snapshots:restore_list"), reverse("snapshots:list")
    return [
        Case("snapshot page 1, by name", detail),
        Case("snapshot page 250, by name", detail, {"page": 250}),
        Case("snapshot page 500 (last), by name", detail, {"page": 500}),
        Case("snapshot page 1, by device", detail, {"sort": "device"}),
        Case("snapshot page 250, by -severity", detail, {"sort": "-severity", "page": 250}),
        Case("snapshot page 1, tag (1 of 20)", detail, {"tag": tag}),
        Case("snapshot page 1, name contains", detail, {"name": "DEV1"}),
        Case("snapshot page 1, out of tolerance vs live", detail, {"out_of_tolerance": "on"}),
        Case("snapshot page 1, disconnected now", detail, {"connection": "live"}),
        Case("snapshot edit form (GET)", edit),
        Case("snapshot edit form (POST, saved)", edit, {"edit-title": "bench", "edit-comment": "edited"}, "post", 302),
        Case("live table page 1", reverse("pvs:live")),
        Case("live table page 400", reverse("pvs:live"), {"page": 400}),
        Case("live table page 1, tag", reverse("pvs:live"), {"tag": tag}),
        # The two-way pages beside them, measured in the same run: the figures to compare with.
        Case("compare 2-way, A against B, page 1", compare, {"a": ids["snapshot"], "b": ids["columns"][0]}),
        Case("compare 2-way, A against live, page 1", compare, {"a": ids["snapshot"], "b": "live"}),
        Case("compare 3 columns (2 + live), page 1", compare, three),
        Case("compare 3 columns, differences only", compare, {**three, "differences_only": "on"}),
        Case("compare 7 snapshot columns, no live, page 1", compare, {**eight, "b": ids["columns"][:7]}),
        Case("compare 8 columns (7 + live), page 1", compare, eight),
        Case("compare 8 columns, page 250", compare, {**eight, "page": 250}),
        Case("compare 8 columns, differences only", compare, {**eight, "differences_only": "on"}),
        Case("compare 8 columns, tag", compare, {**eight, "tag": tag}),
        Case("restore preview (readbacks), to write, page 1", preview),
        Case("restore preview, all, page 250", preview, {"action": "all", "page": 250}),
        Case("restore preview, unchanged", preview, {"action": "unchanged"}),
        Case("jobs page 1", jobs),
        Case("jobs page 500", jobs, {"page": 500}),
        Case("jobs, restores only (rare), page 1", jobs, {"type": "restore"}),
        Case("jobs, failed, by user", jobs, {"status": "failed", "user": "bench"}),
        Case("restores page 1", restores),
        Case("restores page 50", restores, {"page": 50}),
        Case("restores, undos only", restores, {"kind": "undo"}),
        Case("restores, snapshot title contains", restores, {"snapshot": "bench"}),
        Case("snapshot list page 1 (undo points hidden)", snapshots),
        Case("snapshot list page 1, undo points shown", snapshots, {"undo_points": "on"}),
        Case("snapshot list, origin scheduled", snapshots, {"origin": "scheduled"}),
        Case("snapshot list, last page", snapshots, {"page": "last"}),
        Case("PV set page 1 (explicit PVs)", pv_set),
        Case("PV set page 40", pv_set, {"page": 40}),
        Case("PV set edit form (GET)", reverse("pvs:pv_set_edit", args=[ids["pv_set"]])),
        Case("PV set list", reverse("pvs:pv_sets")),
    ]


def history(pvs: int, user, snapshot) -> dict:
    """What the measured pages show besides the snapshot: the N-way columns, a preview, jobs,
    restores, older snapshots and a PV set, written as an installation accumulates them."""
    columns = [
        take_snapshot(title=f"column {i}", created_by=user, mode="cache", max_heartbeat_age=CACHE_AGE).id
        for i in range(6)
    ] + [Snapshot.objects.get(title="earlier").id]
    live.write_heartbeat(live.redis_client(), live.Shard(0, 1), {"synced": True})  # the columns took a while
    preview = preview_restore(snapshot, created_by=user, cache_only=True)
    now = timezone.now()
    kinds = [(SnapshotOrigin.SCHEDULED, "Scheduled"), (SnapshotOrigin.PRE_RESTORE, "Before restore")]
    old = Snapshot.objects.bulk_create(
        Snapshot(title=f"{kinds[i % 2][1]} {i}", created_by=user, mode="cache", origin=kinds[i % 2][0])
        for i in range(max(pvs // 25, 4))
    )
    Snapshot.objects.filter(pk__in=[s.pk for s in old]).update(created_at=now - timedelta(days=30))
    statuses = [JobStatus.SUCCEEDED] * 8 + [JobStatus.FAILED, JobStatus.EXPIRED]
    Job.objects.bulk_create(
        (
            Job(
                type=JobType.RESTORE if i % 500 == 0 else JobType.SNAPSHOT,
                status=statuses[i % 10],
                progress=100,
                created_by=user,
                data={"title": f"scheduled {i}"},
            )
            for i in range(pvs)
        ),
        batch_size=5000,
    )
    count = max(pvs // 10, 4)
    undo_points = [s.pk for s in old if s.origin == SnapshotOrigin.PRE_RESTORE]
    previews = RestorePreview.objects.bulk_create(
        RestorePreview(
            snapshot_id=undo_points[i % len(undo_points)] if i % 2 else snapshot.pk,
            created_by=user,
            expires_at=now,
            registry_fingerprint="0" * 32,
            live_source="cache",
            selection_size=pvs,
        )
        for i in range(count)
    )
    summary = {"succeeded": pvs - 10, "failed": 10}
    Restore.objects.bulk_create(
        (
            Restore(
                preview=p, snapshot_id=p.snapshot_id, created_by=user, status=RestoreStatus.PARTIAL, summary=summary
            )
            for p in previews
        ),
        batch_size=5000,
    )
    pv_set = PVSet.objects.create(name="bench set", description="explicit PVs", created_by=user)
    pv_set.pvs.add(*PV.objects.order_by("id").values_list("id", flat=True)[: max(pvs // 5, 10)])
    return {"snapshot": snapshot.id, "columns": columns, "preview": preview.id, "pv_set": pv_set.id}


def explain(client: Client, case: Case) -> None:
    """EXPLAIN ANALYZE the SELECTs a page runs (their count first: an N+1 shows there)."""
    with CaptureQueriesContext(connection) as captured:
        getattr(client, case.method)(case.url, case.query)
    print(f"    {len(captured.captured_queries)} queries")
    for statement in captured.captured_queries:
        sql = statement["sql"]
        if not sql.startswith("SELECT") or "django_session" in sql:
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
    parser.add_argument(
        "--only", action="append", default=[], help="time only the cases whose name contains this (repeatable)"
    )
    bench_stats.add_argument(parser)
    args = smoke.parse_args(parser, pvs=300, repeat=1)
    create_database(new=True)
    assert import_pvs("bench.csv", registry_csv(args.pvs), dry_run=False).ok
    redis = live.redis_client()
    redis.flushdb()
    fill_cache(redis, list(PV.objects.values_list("setpoint_address", "readback_address")))
    user, _ = get_user_model().objects.get_or_create(username="bench", defaults={"is_superuser": True})
    take_snapshot(title="earlier", created_by=user, mode="cache", max_heartbeat_age=CACHE_AGE)
    stats = bench_stats.Statistics(args.stats)
    stats.history_done()
    snapshot = take_snapshot(title="bench", created_by=user, mode="cache", max_heartbeat_age=CACHE_AGE)
    # Every live value moves (the cache refilled one PV along): the worst case of "out of tolerance".
    addresses = list(PV.objects.order_by("id").values_list("setpoint_address", "readback_address"))
    redis.delete(live.lease_key(live.Shard(0, 1)))
    fill_cache(redis, addresses[1:] + addresses[:1])
    ids = {**history(args.pvs, user, snapshot), "tag": Tag.objects.order_by("id").first().id}
    stats.before_timing()
    client = Client()
    client.force_login(user)
    print(
        f"{args.pvs} PVs, snapshot of {snapshot.pv_count} values; statistics {args.stats}; "
        f"median of {args.repeat} requests; load average {os.getloadavg()[0]:.2f}:"
    )
    for case in cases(ids):
        if args.only and not any(part in case.name for part in args.only):
            continue
        request, times = getattr(client, case.method), []
        for _ in range(args.repeat):
            live.write_heartbeat(redis, live.Shard(0, 1), {"synced": True})
            response = {}
            call = partial(request, case.url, case.query)
            times.append(timed(lambda response=response, call=call: response.update(r=call())))
            assert response["r"].status_code == case.status, (case.name, response["r"].status_code)
        rows = response["r"].content.count(b"<tr")
        print(f"  {case.name:<48} {statistics.median(times) * 1000:7.1f} ms  ({rows} <tr>)")
        if args.explain:
            explain(client, case)


if __name__ == "__main__":
    main()
