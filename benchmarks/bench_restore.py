"""Time execute_restore at 50,000 PVs against a real simulated IOC.

    .venv/bin/python benchmarks/bench_restore.py [--pvs 50000] [--port 15979] [--repeat 3]
        [--stats none|stale|fresh] [--protocol ca,pva,mixed] [--pva-port 15981]

Starts `run_sim_ioc --pvs N --port P` as a subprocess (stopped by its PID at the end), loads its
registry into the database `squirrel_bench` (override with SQUIRREL_DB_NAME; it is dropped and
created again: never point it at a database you care about), takes a direct snapshot and restores
it once (the earlier work of bench_stats), then restores it with include_unchanged=True so every
writable PV is written. Each run uses a fresh preview. Reports medians of the whole
execute_restore call and of its phases (undo snapshot, staged puts, verification), timed from the
progress callback, and of the CPU time the benchmark's process spent in the call (every thread:
the runner, its recorder, Channel Access), which a loaded machine inflates less than wall time.
--stats (see bench_stats.py) says when ANALYZE runs; stale by default.

--protocol says what the registry's N PVs speak: `ca` (the simulated IOC above), `pva` (N
``pva://`` addresses served by `run_sim_pva --port --pva-port`: doubles, integers, booleans,
strings, arrays, NTEnums and NTTables, which are saved but never written) or `mixed` (N/2 of
each, both servers); several, comma-separated, run one after the other (each in a process of its
own, on a freshly created database), so their figures come from the same run. Reads, puts and
snapshots go through `pvs.channels.service()`, as the worker's do; SQUIRREL_PVA_CONTEXTS sets
the pvAccess client's context count (pvs/pva_bulk.py).

With --with-monitor a `monitor_pvs` process runs beside it, as in production: the undo snapshot
then comes from the live cache (hybrid) and verification watches the cache. It uses Redis
database 12 (SQUIRREL_REDIS_URL overrides it), flushed first.
"""

import argparse
import cProfile
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bench_stats
import sim_ioc
import smoke

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "squirrel_site.settings")
os.environ.setdefault("SQUIRREL_DB_NAME", "squirrel_bench")
os.environ.setdefault("SQUIRREL_SECRET_KEY", "benchmark-only")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pvs", type=int, default=50_000)
    parser.add_argument("--port", type=int, default=15979)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--protocol", default="ca", help="ca, pva or mixed, or several comma-separated (each in turn)")
    parser.add_argument(
        "--pva-port", type=int, help="the pvAccess server's TCP port (its UDP port: the next); default --port + 2"
    )
    parser.add_argument("--with-monitor", action="store_true", help="run monitor_pvs beside it, as in production")
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="cProfile the last verified restore and print its N costliest functions",
    )
    bench_stats.add_argument(parser)
    args = smoke.parse_args(parser, pvs=300, repeat=1, protocol="mixed")
    protocols = [protocol for protocol in args.protocol.split(",") if protocol]
    if not protocols or set(protocols) - set(sim_ioc.PROTOCOLS):
        parser.error(f"--protocol: one or more of {', '.join(sim_ioc.PROTOCOLS)}, not {args.protocol!r}")
    if len(protocols) > 1:
        # Each in a process of its own: libca would otherwise take its time (~16 s) to find the
        # next protocol's IOC on the port the previous one left.
        for protocol in protocols:
            done = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--protocol", protocol], check=False)
            if done.returncode:
                sys.exit(f"--protocol {protocol} exited {done.returncode}")
        return
    protocol = protocols[0]
    pva_port = args.port + 2 if args.pva_port is None else args.pva_port
    os.environ.setdefault("SQUIRREL_REDIS_URL", "redis://127.0.0.1:6379/12")
    # libca reads the port when it loads: set it before Django (and pvs.epics_io) start; the
    # pvAccess client (and a monitor started from here) searches the simulated server's UDP port.
    os.environ["EPICS_CA_SERVER_PORT"] = str(args.port)
    os.environ.update(sim_ioc.pva_client_env(pva_port))

    import django

    django.setup()
    from bench_import import create_database

    create_database(new=True)
    workdir = Path(tempfile.mkdtemp(prefix=f"bench_restore_{protocol}_"))
    servers = sim_ioc.start_servers(protocol, args.pvs, args.port, pva_port, workdir, "--change-rate", "0")
    print(f"--- protocol {protocol}: {sim_ioc.describe(protocol, args.pvs)}", flush=True)
    try:
        run(args, protocol, workdir, start_monitor if args.with_monitor else None)
    finally:
        for process in (monitor_process, *servers):
            if process is not None:
                sim_ioc.stop_process(process)


monitor_process = None


def start_monitor(workdir: Path, expected: int) -> None:
    """monitor_pvs as a subprocess; returns once it has a value for `expected` addresses."""
    from monitor import live

    global monitor_process
    live.redis_client().flushdb()
    with (workdir / "monitor.log").open("w") as log:
        monitor_process = subprocess.Popen(
            [sys.executable, "manage.py", "monitor_pvs"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 120
    while live.redis_client().hlen(live.VALUES_KEY) < expected or not live.read_heartbeats():
        if monitor_process.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"the monitor did not start:\n{(workdir / 'monitor.log').read_text()}")
        time.sleep(0.2)


def run(args, protocol: str, workdir: Path, with_monitor=None) -> None:
    from django.contrib.auth import get_user_model

    from pvs.channels import service
    from pvs.importers import import_pvs
    from pvs.models import PV
    from snapshots.capture.services import take_snapshot
    from snapshots.models import RestoreStatus
    from snapshots.restore.execute import execute_restore
    from snapshots.restore.preview import preview_restore

    ca, pva = sim_ioc.split(protocol, args.pvs)
    if ca:
        report = import_pvs("registry.csv", (workdir / "registry.csv").read_bytes(), dry_run=False)
        assert report.ok, report.errors[:5]
    PV.objects.bulk_create((PV(**fields) for fields in sim_ioc.pva_pvs(pva)), batch_size=5000)
    user, _ = get_user_model().objects.get_or_create(username="bench")
    io = service()
    started = time.perf_counter()
    addresses = [a for pv in PV.objects.values_list("setpoint_address", "readback_address") for a in pv if a]
    connected = io.connect(addresses, 20.0)
    print(
        f"{PV.objects.count()} PVs, {len(connected)} of {len(addresses)} addresses connected "
        f"in {time.perf_counter() - started:.2f} s; statistics {args.stats}; load average {os.getloadavg()[0]:.2f}"
    )
    if with_monitor is not None:
        with_monitor(workdir, len(set(addresses)))
        print("monitor running: undo snapshots from the cache, verification from the cache")
    snapshot = take_snapshot(title="bench", created_by=user, mode="direct", reader=io)
    # The earlier work: one restore, so that every table holds rows older than the statistics.
    execute_restore(
        preview_restore(snapshot, created_by=user, include_unchanged=True, io=io), user=user, io=io, verify=False
    )
    stats = bench_stats.Statistics(args.stats)
    stats.history_done()
    # Direct snapshots with the worker's channels warm (the reference above warmed nothing more).
    direct = []
    for _ in range(args.repeat):
        stats.before_timing()
        direct.append(take_snapshot(title="direct", created_by=user, mode="direct", reader=io))
    totals = [sum(s.timings.values()) for s in direct]
    print(
        f"direct snapshot of {direct[0].pv_count} PVs (setpoints and read-backs read from the servers), "
        f"call to commit: median {statistics.median(totals):.2f} s of {[round(t, 2) for t in totals]}"
    )
    for stage in direct[0].timings:
        print(f"    {stage:<28} {statistics.median(s.timings[stage] for s in direct):6.2f} s")

    results: dict[str, list] = {"applied": [], "verified": []}
    unfinished = []  # restores that did not succeed: reported after the figures, then a failure
    for label, verify in (("applied", False), ("verified", True)):
        for _ in range(args.repeat):
            preview = preview_restore(snapshot, created_by=user, include_unchanged=True, io=io)
            stats.before_timing()
            marks = []
            profiler = (
                cProfile.Profile() if args.profile and verify and len(results[label]) == args.repeat - 1 else None
            )
            start, cpu_start = time.perf_counter(), time.process_time()
            if profiler:
                profiler.enable()
            restore = execute_restore(
                preview,
                user=user,
                io=io,
                verify=verify,
                verify_timeout=10.0,
                progress=lambda percent, message, marks=marks, start=start: marks.append(
                    (time.perf_counter() - start, message)
                ),
            )
            total, cpu = time.perf_counter() - start, time.process_time() - cpu_start
            if restore.status != RestoreStatus.SUCCEEDED:
                unfinished.append(f"{label}: {restore.status} {restore.summary}")
            if profiler:
                profiler.disable()
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.profile)
            results[label].append((total, phases(marks, total), restore.summary, preview.write_count, cpu))
    for label, runs in results.items():
        totals = [r[0] for r in runs]
        names = runs[0][1].keys()
        print(
            f"{label}: median {statistics.median(totals):.2f} s of {[round(t, 2) for t in totals]}; "
            f"{runs[0][3]} PVs written; items {runs[-1][2]}; "
            f"CPU of this process (all threads) median {statistics.median(r[4] for r in runs):.2f} s"
        )
        for name in names:
            print(f"    {name:<28} {statistics.median(r[1][name] for r in runs):6.2f} s")
    if unfinished:
        sys.exit("restores that did not succeed: " + "; ".join(unfinished))


def phases(marks: list[tuple[float, str]], total: float) -> dict[str, float]:
    """Seconds per phase from the progress marks: undo snapshot, writing (all stages), verification."""
    times = dict(undo=0.0, writing=0.0, verifying=0.0, finishing=0.0)
    for (at, message), (following, _) in zip(marks, marks[1:] + [(total, "")], strict=True):
        key = (
            "undo"
            if message.startswith("Taking")
            else "writing"
            if message.startswith("Writing")
            else "verifying"
            if message.startswith("Verifying")
            else "finishing"
        )
        times[key] += following - at
        if message.startswith("Writing"):
            times["  " + message.lower()] = following - at
    return times


if __name__ == "__main__":
    main()
