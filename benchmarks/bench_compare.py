"""Time comparisons at 50,000 PVs: snapshot against snapshot (SQL), N-way (A against 8 columns;
both also of one tag's PVs), against live values (Redis), the compare page and API through
Django's test client, CSV export and the drift summary.

    .venv/bin/python benchmarks/bench_compare.py [--pvs 50000] [--repeat 5] [--changed 0.07]
        [--stats none|stale|fresh] [--only all|nway-csv]

Uses the database `squirrel_bench_cmp` (SQUIRREL_DB_NAME overrides it; dropped and created
again) and Redis database 7 (SQUIRREL_REDIS_URL overrides it; FLUSHDB'd first): never point
either at data you care about. A snapshot is taken before the two compared (the earlier work of
bench_stats); --stats says when ANALYZE runs (fresh: once, after both), stale by default.
"""

import argparse
import os
import random
import statistics
import sys
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "squirrel_site.settings")
os.environ.setdefault("SQUIRREL_DB_NAME", "squirrel_bench_cmp")
os.environ.setdefault("SQUIRREL_SECRET_KEY", "benchmark-only")
os.environ.setdefault("SQUIRREL_REDIS_URL", "redis://127.0.0.1:6379/7")

import django

django.setup()

import bench_stats  # noqa: E402
import smoke  # noqa: E402
from bench_import import create_database, registry_csv  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import NoReverseMatch, reverse  # noqa: E402

from monitor import live  # noqa: E402
from pvs.importers import import_pvs  # noqa: E402
from pvs.models import PV  # noqa: E402
from pvs.selections import select_pvs  # noqa: E402
from snapshots.capture.models import Snapshot  # noqa: E402
from snapshots.capture.services import take_snapshot  # noqa: E402
from snapshots.comparison.drift import drift_summary  # noqa: E402
from snapshots.comparison.nway import NWayComparison, compare_columns, write_nway_csv  # noqa: E402
from snapshots.comparison.rows import Comparison, compare, write_csv  # noqa: E402
from snapshots.comparison.rules import ComparisonStatus  # noqa: E402
from squirrel_site.epics_values import Value  # noqa: E402
from tags.models import Tag  # noqa: E402

ENUM_LABELS = ["Off", "On", "Fault"]
ARRAY_LENGTH = 100


class NullWriter:
    def write(self, text: str) -> int:
        return len(text)


# The cache's heartbeat may be older than take_snapshot's 5 s when the snapshot reads it: on a
# loaded machine writing 50,000 values takes longer, and the snapshots were then read over
# Channel Access (no IOC: every value disconnected, nothing left to compare).
CACHE_AGE = 3600.0


def machine_state(addresses: list[str], rng: random.Random, base: dict | None, changed: float) -> dict:
    """address -> (kind, value) for every setpoint: floats mostly, some ints, enums, strings and
    100-element waveforms; from `base`, a fraction `changed` of them moved."""
    state = {}
    for i, address in enumerate(addresses):
        if base is not None:
            kind, value = base[address]
            if rng.random() < changed:
                if kind == "float":
                    value = value + rng.choice([-1, 1]) * rng.uniform(0.01, 5.0)
                elif kind == "int":
                    value = value + rng.choice([-2, -1, 1, 2])
                elif kind == "enum":
                    value = (value + 1) % len(ENUM_LABELS)
                elif kind == "string":
                    value = value + "*"
                else:
                    value = list(value)
                    value[rng.randrange(len(value))] += 1.0
            state[address] = (kind, value)
            continue
        slot = i % 100
        if slot < 8:
            state[address] = ("int", rng.randrange(1000))
        elif slot < 16:
            state[address] = ("enum", rng.randrange(len(ENUM_LABELS)))
        elif slot < 18:
            state[address] = ("string", f"mode-{rng.randrange(10)}")
        elif slot < 19:
            state[address] = ("float_array", [rng.uniform(-1, 1) for _ in range(ARRAY_LENGTH)])
        else:
            state[address] = ("float", rng.uniform(-100, 100))
    return state


def write_cache(client, state: dict) -> None:
    """Live values and metadata for every address of `state`, and a fresh heartbeat."""
    lease = live.Lease(client, live.Shard(0, 1), "bench", ttl=60.0)
    assert lease.acquire()
    writer = live.FencedWriter(client, lease)
    now = time.time()
    values, metadata = {}, {}
    for i, (address, (kind, value)) in enumerate(state.items()):
        connected = i % 500 != 7
        values[address] = Value(address, kind, value if connected else None, 0, 0, now - 60, now - 1, connected)
        metadata[address] = live.LiveMeta(
            "mA",
            3,
            ENUM_LABELS if kind == "enum" else None,
            -10.0,
            10.0,
            "127.0.0.1:5064",
            kind,
            ARRAY_LENGTH if "array" in kind else 1,
            True,
            True,
        )
    assert writer.write(values, metadata)
    live.write_heartbeat(client, live.Shard(0, 1), {"synced": True})
    lease.release()


def median(function, repeat: int) -> tuple[tuple[float, float], object]:
    """((median, fastest) seconds of `repeat` calls, the last result)."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return (statistics.median(times), min(times)), result


def report(label: str, seconds: tuple[float, float], detail: str = "") -> None:
    print(f"  {label:<62} {seconds[0] * 1000:8.1f} ms (fastest {seconds[1] * 1000:7.1f})  {detail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pvs", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--changed", type=float, default=0.07, help="fraction of values that differ")
    parser.add_argument(
        "--only", choices=["all", "nway-csv"], default="all", help="nway-csv: only the N-way CSV export after the setup"
    )
    bench_stats.add_argument(parser)
    args = smoke.parse_args(parser, pvs=300, repeat=1)
    create_database(new=True)
    call_command("collectstatic", interactive=False, verbosity=0)  # pages need the manifest
    assert import_pvs("bench.csv", registry_csv(args.pvs), dry_run=False).ok
    user, _ = get_user_model().objects.get_or_create(
        username="bench", defaults={"is_superuser": True, "is_staff": True}
    )
    client = live.redis_client()
    client.flushdb()
    addresses = list(PV.objects.order_by("id").values_list("setpoint_address", flat=True))
    rng = random.Random(5)
    before = machine_state(addresses, rng, None, 0.0)
    after = machine_state(addresses, rng, before, args.changed)

    # Both snapshots are taken the way operators take them: from the cache, written with COPY.
    write_cache(client, before)
    take_snapshot(title="earlier", created_by=user, mode="cache", max_heartbeat_age=CACHE_AGE)
    stats = bench_stats.Statistics(args.stats)
    stats.history_done()
    a = take_snapshot(title="bench A", created_by=user, mode="cache", max_heartbeat_age=CACHE_AGE)
    write_cache(client, after)
    b = take_snapshot(title="bench B", created_by=user, mode="cache", max_heartbeat_age=CACHE_AGE)
    # Six more for the N-way comparison, each a little further from B; the cache ends as B's.
    extra, state = [], after
    for i in range(6):
        state = machine_state(addresses, rng, state, args.changed / 4)
        write_cache(client, state)
        extra.append(take_snapshot(title=f"bench N{i + 1}", created_by=user, mode="cache", max_heartbeat_age=CACHE_AGE))
    write_cache(client, after)
    earlier = Snapshot.objects.get(title="earlier")
    live.write_heartbeat(client, live.Shard(0, 1), {"synced": True})
    stats.before_timing()
    pair = Comparison(a=a, b=b)
    counts = compare(pair, limit=1).counts
    differing = sum(n for status, n in counts.items() if status not in ("equal", "within"))
    print(
        f"{args.pvs:,} PVs; snapshot {a.id} vs {b.id}: {differing:,} rows differ "
        f"({', '.join(f'{s} {n:,}' for s, n in counts.items() if n)}); statistics {args.stats}; "
        f"median of {args.repeat} runs; "
        f"load average {os.getloadavg()[0]:.2f}"
    )

    eight = (earlier, b, *extra)
    if args.only == "nway-csv":
        seconds, count = median(lambda: write_nway_csv(NWayComparison(a, eight), NullWriter()), args.repeat)
        report("CSV export of every row, 8 snapshot columns", seconds, f"{count:,} rows")
        print(f"load average at the end {os.getloadavg()[0]:.2f} (2 cores)")
        return

    print("Snapshot against snapshot (snapshots.comparison.rows, SQL):")
    cases = [
        ("every row compared and counted, none returned (limit=0)", Comparison(a=a, b=b), 0),
        ("every row to Python (limit=None, with counts)", Comparison(a=a, b=b), None),
        ("differences only, every one to Python", Comparison(a=a, b=b, differences_only=True), None),
        ("first page of 100, by name, with counts", Comparison(a=a, b=b), 100),
        ("first page of 100, differences only", Comparison(a=a, b=b, differences_only=True), 100),
        ("first page of 100, by |delta| descending", Comparison(a=a, b=b, sort="-delta"), 100),
        (
            "first page of 100, out of tolerance, by status",
            Comparison(a=a, b=b, statuses=frozenset({ComparisonStatus.OUT_OF_TOLERANCE}), sort="status"),
            100,
        ),
    ]
    # A tag selection (one Area tag, a twentieth of the registry), as the compare page's tag filter.
    tagged = select_pvs({"tag": [Tag.objects.get(name="AREA3").pk]})
    cases += [
        ("first page of 100, one Area tag, with counts", Comparison(a=a, b=b, pvs=tagged), 100),
        ("one Area tag, differences only, every one", Comparison(a=a, b=b, pvs=tagged, differences_only=True), None),
    ]
    for label, comparison, limit in cases:
        seconds, page = median(partial(compare, comparison, limit=limit), args.repeat)
        report(label, seconds, f"{len(page.rows):,} rows of {page.total:,}")
    seconds, page = median(lambda: compare(pair, offset=49_900, limit=100), args.repeat)
    report("last page (offset 49,900)", seconds, f"{len(page.rows)} rows")
    seconds, count = median(lambda: write_csv(pair, NullWriter()), args.repeat)
    report("CSV export of every row", seconds, f"{count:,} rows")

    print("N-way: A against 8 columns side by side (snapshots.comparison.nway, one query):")
    seven_and_live = (b, *extra, None)
    nway_cases = [
        ("8 snapshot columns, first page of 100, with counts", NWayComparison(a, eight), 100),
        ("8 snapshot columns, differences only, first page", NWayComparison(a, eight, differences_only=True), 100),
        ("8 snapshot columns, last page", NWayComparison(a, eight), -100),
        ("7 snapshots and live, first page of 100", NWayComparison(a, seven_and_live), 100),
        ("7 snapshots and live, differences only", NWayComparison(a, seven_and_live, differences_only=True), 100),
        ("A, B and live (3 columns), first page", NWayComparison(a, (b, None)), 100),
        ("8 snapshot columns, one Area tag, first page", NWayComparison(a, eight, pvs=tagged), 100),
    ]
    for label, comparison, limit in nway_cases:
        offset = max(args.pvs + limit, 0) if limit < 0 else 0
        seconds, page = median(partial(compare_columns, comparison, offset=offset, limit=abs(limit)), args.repeat)
        report(label, seconds, f"{len(page.rows):,} rows of {page.total:,}")
    seconds, count = median(lambda: write_nway_csv(NWayComparison(a, eight), NullWriter()), args.repeat)
    report("CSV export of every row, 8 snapshot columns", seconds, f"{count:,} rows")

    print("Snapshot against live values (Redis):")
    live_cases = [
        ("first page of 100, by name, no counts (page's addresses only)", Comparison(a=a), 100, False),
        ("every row compared and counted, none returned (limit=0)", Comparison(a=a), 0, True),
        ("first page of 100, by name, with counts (every address)", Comparison(a=a), 100, True),
        ("first page of 100, differences only", Comparison(a=a, differences_only=True), 100, True),
        ("differences only, every one to Python", Comparison(a=a, differences_only=True), None, True),
    ]
    for label, comparison, limit, with_counts in live_cases:
        seconds, page = median(partial(compare, comparison, limit=limit, with_counts=with_counts), args.repeat)
        report(label, seconds, f"{len(page.rows):,} rows of {page.total:,}")
    seconds, summary = median(lambda: drift_summary(a), args.repeat)
    report(
        "drift summary against snapshot A",
        seconds,
        f"{summary.totals.pvs:,} PVs, {summary.totals.out_of_tolerance:,} out of tolerance",
    )

    http = Client(HTTP_HOST="127.0.0.1")
    http.force_login(user)
    print("Through Django's test client (full request):")
    requests = [
        ("API /api/v1/compare/, first page of 100", "/api/v1/compare/", {"a": a.id, "b": b.id}),
        ("API /api/v1/compare/, live, first page", "/api/v1/compare/", {"a": a.id, "b": "live"}),
        (
            "API /api/v1/compare/columns/, 8 snapshot columns, first page",
            "/api/v1/compare/columns/",
            {"a": a.id, "b": [s.id for s in eight]},
        ),
    ]
    try:
        compare_url, drift_url = reverse("snapshots:compare"), reverse("snapshots:drift")
    except NoReverseMatch:
        compare_url = drift_url = None
    if compare_url:
        requests += [
            ("compare page, first page of 100", compare_url, {"a": a.id, "b": b.id}),
            ("compare page, differences only", compare_url, {"a": a.id, "b": b.id, "differences_only": "on"}),
            ("compare page, page 200", compare_url, {"a": a.id, "b": b.id, "page": 200}),
            ("compare page against live, first page", compare_url, {"a": a.id, "b": "live"}),
            (
                "compare page against live, differences only",
                compare_url,
                {"a": a.id, "b": "live", "differences_only": "on"},
            ),
            ("compare page, 8 snapshot columns, first page", compare_url, {"a": a.id, "b": [s.id for s in eight]}),
            (
                "compare page, 7 snapshots and live, differences only",
                compare_url,
                {"a": a.id, "b": [*(s.id for s in seven_and_live[:-1]), "live"], "differences_only": "on"},
            ),
            ("drift page", drift_url, {"snapshot": a.id}),
        ]
    for label, url, params in requests:
        seconds, response = median(partial(http.get, url, params), args.repeat)
        assert response.status_code == 200, (url, response.status_code, response.content[:500])
        report(label, seconds, f"{len(response.content) / 1024:,.0f} KiB")
    print(f"load average at the end {os.getloadavg()[0]:.2f} (2 cores)")


if __name__ == "__main__":
    main()
