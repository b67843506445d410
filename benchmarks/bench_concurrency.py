"""One web process under a burst of concurrent requests: what the clients are answered, how fast,
how many database connections the process holds, and its memory.

    .venv/bin/python benchmarks/bench_concurrency.py [--clients 200] [--requests 1] [--pvs 3000]
                                                     [--concurrency 8] [--queue 64] [--port 18200]
                                                     [--backlog N] [--unbounded]

A web process started as in production (`python -m squirrel_site.web_server`, daphne serving
`squirrel_site.asgi:application` with the production settings: connection pool and admission
control, squirrel_site/admission.py) on 127.0.0.1:`--port`; `--clients` clients send
`GET /api/v1/pvs/?page_size=100` with a viewer's token and `--clients` more send anonymous
`GET /api/v1/health/`, all released at once, each sending `--requests` requests one after the
other on a new connection each. Meanwhile another connection counts the process's connections
in pg_stat_activity every 10 ms, and every 250 ms a new connection runs a query (as beat or a
worker would). `--backlog` sets the listening socket's backlog (daphne's own is 50: a burst of
more new connections than that waits for SYN retransmits, 1 s and more). `--unbounded` runs the
process as before the bound (no pool, no admission control) for comparison.

Private resources: database `squirrel_bench_concurrency` (SQUIRREL_DB_NAME overrides it; created
and migrated if missing, its registry emptied and refilled with `--pvs` PVs); the health checks
read Redis database 13 (SQUIRREL_REDIS_URL overrides it; nothing is written).
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import smoke

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "squirrel_site.settings")
os.environ.setdefault("SQUIRREL_DB_NAME", "squirrel_bench_concurrency")
os.environ.setdefault("SQUIRREL_SECRET_KEY", "benchmark-only")
os.environ.setdefault("SQUIRREL_REDIS_URL", "redis://127.0.0.1:6379/13")

import django  # noqa: E402

django.setup()

from bench_import import create_database, empty_registry  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402
from django.db import connection  # noqa: E402
from knox.models import AuthToken  # noqa: E402

from pvs.models import PV  # noqa: E402
from squirrel_site.testing.load import ConnectionWatch, WebProcess, burst, database_dsn, summary  # noqa: E402

APP_NAME = "squirrel-bench-web"


def prepare(pvs: int) -> str:
    """A registry of `pvs` PVs and a viewer's token."""
    create_database()
    empty_registry()
    PV.objects.bulk_create(
        PV(setpoint_address=f"BENCH:DEV{i}:SP", readback_address=f"BENCH:DEV{i}:RBV", device=f"DEV{i}")
        for i in range(pvs)
    )
    user, _ = get_user_model().objects.get_or_create(username="bench-viewer")
    user.groups.add(Group.objects.get(name="viewer"))
    _, token = AuthToken.objects.create(user=user)
    connection.close()
    return token


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200, help="clients of each kind (list, health)")
    parser.add_argument("--requests", type=int, default=1, help="requests per client")
    parser.add_argument("--pvs", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8, help="SQUIRREL_WEB_CONCURRENCY")
    parser.add_argument("--queue", type=int, default=64, help="SQUIRREL_WEB_QUEUE")
    parser.add_argument("--port", type=int, default=18200)
    parser.add_argument("--backlog", type=int, help="daphne -e tcp:PORT:interface=127.0.0.1:backlog=N")
    parser.add_argument("--unbounded", action="store_true", help="no pool, no admission control (as before)")
    args = smoke.parse_args(parser, clients=20, pvs=300, queue=4)

    token = prepare(args.pvs)
    db = settings.DATABASES["default"]
    dsn = database_dsn(db)
    env = {
        "SQUIRREL_DB_NAME": db["NAME"],
        "SQUIRREL_REDIS_URL": settings.REDIS_URL,
        "SQUIRREL_WEB_CONCURRENCY": str(args.concurrency),
        "SQUIRREL_WEB_QUEUE": str(args.queue),
    }
    if args.unbounded:
        env |= {"SQUIRREL_WEB_CONCURRENCY": "100000", "SQUIRREL_DB_POOL": "0"}
    with tempfile.TemporaryDirectory(prefix="bench-concurrency-") as tmp:
        env["SQUIRREL_STATIC_ROOT"] = str(Path(tmp) / "static")
        web = WebProcess(args.port, APP_NAME, Path(tmp) / "daphne.log", ROOT, env, args.backlog)
        try:
            rss_before = web.rss_mb()
            listing = (f"{web.url}/api/v1/pvs/?page_size=100", {"Authorization": f"Token {token}"})
            requests = [listing] * args.clients
            requests += [(f"{web.url}/api/v1/health/", {})] * args.clients
            start = time.perf_counter()
            with ConnectionWatch(dsn, APP_NAME) as watch:
                answers = burst(requests, args.requests)
            elapsed = time.perf_counter() - start
            rss_after = web.rss_mb()
        finally:
            web.stop()

    if args.unbounded:
        mode = "unbounded (no pool, no admission control)"
    else:
        mode = f"concurrency {args.concurrency}, queue {args.queue}, pool max {args.concurrency + 1}"
    backlog = f"backlog {args.backlog}" if args.backlog else "daphne's backlog (50)"
    print(
        f"{mode}, {backlog}; {args.clients} list + {args.clients} health clients x {args.requests} "
        f"request(s); {args.pvs} PVs; {elapsed:.2f} s"
    )
    parts = [
        ("list", lambda a: "/api/v1/pvs/" in a.url),
        ("health", lambda a: "/api/v1/health/" in a.url),
        ("all", lambda a: True),
        ("200s", lambda a: a.status == 200),
        ("503s", lambda a: a.status == 503),
    ]
    for label, chosen in parts:
        selected = [answer for answer in answers if chosen(answer)]
        if selected:
            figures = summary(selected)
            print(
                f"  {label:6} statuses {figures['statuses']}  "
                f"median {figures['median_ms']} ms  p95 {figures['p95_ms']} ms"
            )
    without_retry_after = sum(1 for answer in answers if answer.status == 503 and not answer.retry_after)
    print(f"  503 without Retry-After: {without_retry_after}")
    probe_ok = sum(ok for ok, _ in watch.probes)
    slowest = max((seconds for _, seconds in watch.probes), default=0.0)
    print(f"  database connections held by the web process: at most {watch.most} ({watch.samples} samples)")
    print(f"  another process connecting meanwhile: {probe_ok}/{len(watch.probes)} ok, slowest {slowest * 1000:.0f} ms")
    print(f"  web process RSS: {rss_before:.0f} MB before, {rss_after:.0f} MB after")
    # A 503 is the admission control answering; any other 5xx, or a 503 that does not say when to
    # come back, is a fault (refused connections are not: --unbounded measures those).
    faults = sum(1 for answer in answers if answer.status >= 500 and answer.status != 503) + without_retry_after
    if faults:
        print(f"bench_concurrency: {faults} answers were server errors", file=sys.stderr)
    return 1 if faults else 0


if __name__ == "__main__":
    sys.exit(main())
