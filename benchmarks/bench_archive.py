"""Time a snapshot from the archive of 50,000 PVs (with readbacks) from the simulated archiver.

    .venv/bin/python benchmarks/bench_archive.py [--pvs 50000] [--port 15985] [--repeat 3]
        [--archiver-port P] [--stats none|stale|fresh]

Starts `run_sim_ioc --pvs N --port P --change-rate 0` and loads its registry into the database
`squirrel_bench` (SQUIRREL_DB_NAME overrides it; dropped and created again: never point it at a
database you care about), then `run_sim_archiver` on a free loopback HTTP port (or
--archiver-port), which subscribes every address of that registry over Channel Access and records
them, seeded an hour back. Once the archiver holds every address, takes one snapshot from the
archive (the earlier work of bench_stats), then --repeat measured ones at a time 10 minutes ago:
`take_snapshot(mode="archive", at=...)`, the whole call (registry, the archiver's answers to
getDataAtTime in batches of SQUIRREL_ARCHIVER_BATCH on SQUIRREL_ARCHIVER_THREADS threads, COPY,
commit). Target: ≤ 5 s at 50,000 PVs. Both servers are stopped by their PIDs at the end.
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bench_stats
import sim_ioc
import smoke

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "squirrel_site.settings")
os.environ.setdefault("SQUIRREL_DB_NAME", "squirrel_bench")
os.environ.setdefault("SQUIRREL_SECRET_KEY", "benchmark-only")
RECORD_TIMEOUT = 300.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pvs", type=int, default=50_000)
    parser.add_argument("--port", type=int, default=15985, help="the simulated IOC's CA port (caRepeater: the next)")
    parser.add_argument("--archiver-port", type=int, help="the simulated archiver's HTTP port (default: a free one)")
    parser.add_argument("--repeat", type=int, default=3)
    bench_stats.add_argument(parser)
    args = smoke.parse_args(parser, pvs=300, repeat=1)
    http_port = args.archiver_port or free_port()
    # libca reads the port when it loads, and the settings the archiver's URL: both before Django.
    os.environ["EPICS_CA_SERVER_PORT"] = str(args.port)
    os.environ["SQUIRREL_ARCHIVER_URL"] = f"sim=http://127.0.0.1:{http_port}"

    import django

    django.setup()
    from bench_import import create_database

    create_database(new=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench_archive_"))
    processes = sim_ioc.start_servers("ca", args.pvs, args.port, 0, workdir, "--change-rate", "0")
    try:
        run(args, workdir, http_port, processes)
    finally:
        for process in processes:
            sim_ioc.stop_process(process)


def run(args, workdir: Path, http_port: int, processes: list) -> None:
    from django.contrib.auth import get_user_model

    from pvs import archiver
    from pvs.importers import import_pvs
    from pvs.models import PV
    from snapshots.capture.services import take_snapshot

    report = import_pvs("registry.csv", (workdir / "registry.csv").read_bytes(), dry_run=False)
    assert report.ok, report.errors[:5]
    addresses = [a for pv in PV.objects.values_list("setpoint_address", "readback_address") for a in pv if a]
    user, _ = get_user_model().objects.get_or_create(username="bench")

    started = time.perf_counter()
    log_path = workdir / "archiver.log"
    with log_path.open("w") as log:
        processes.append(
            subprocess.Popen(
                [sys.executable, "manage.py", "run_sim_archiver", "--port", str(http_port), "--seed-hours", "1"],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    deadline = time.monotonic() + RECORD_TIMEOUT
    while True:
        try:
            got = archiver.values_at(addresses, datetime.now(UTC))
            missing = sum(not isinstance(result, archiver.Archived) for result in got.values())
        except archiver.ArchiverError:
            missing = len(addresses)
        if not missing:
            break
        if processes[-1].poll() is not None or time.monotonic() > deadline:
            log = log_path.read_text()
            sys.exit(f"the simulated archiver did not record every address ({missing} missing):\n{log}")
        time.sleep(1.0)
    print(
        f"{PV.objects.count()} PVs, {len(addresses)} addresses recorded by run_sim_archiver "
        f"in {time.perf_counter() - started:.1f} s; statistics {args.stats}; load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )

    at = datetime.now(UTC) - timedelta(minutes=10)
    take_snapshot(title="earlier work", created_by=user, mode="archive", at=at)
    stats = bench_stats.Statistics(args.stats)
    stats.history_done()
    taken = []
    for _ in range(args.repeat):
        stats.before_timing()
        taken.append(take_snapshot(title="from the archive", created_by=user, mode="archive", at=at))
    totals = [sum(s.timings.values()) for s in taken]
    print(
        f"snapshot from the archive of {taken[0].pv_count} PVs ({len(addresses)} addresses asked, "
        f"{taken[0].disconnected_count} not archived), call to commit: median {statistics.median(totals):.2f} s "
        f"of {[round(t, 2) for t in totals]} (target 5 s); load average {os.getloadavg()[0]:.2f}"
    )
    for stage in taken[0].timings:
        print(f"    {stage:<28} {statistics.median(s.timings[stage] for s in taken):6.2f} s")


if __name__ == "__main__":
    main()
