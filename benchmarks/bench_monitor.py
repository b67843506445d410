"""Time the PV monitor: startup to 50,000 PVs in Redis, sustained updates/s, CPU and memory.

    .venv/bin/python benchmarks/bench_monitor.py [--pvs 50000] [--repeat 3] [--loads 10,20,30,40]

Runs everything as separate processes on loopback, as in production: a simulated IOC
(`manage.py run_sim_ioc`, or a generated .db of `calc` records for the load cases), the monitor
(`manage.py monitor_pvs`) and a caRepeater, all on private CA ports, with Redis DB 9
(SQUIRREL_BENCH_REDIS_URL overrides it; it is FLUSHDB'd before every case) and a throwaway
database created like bench_import.py's, `squirrel_bench_monitor` (SQUIRREL_DB_NAME overrides it;
its registry is emptied and re-imported). Not bench_snapshot.py's `squirrel_bench` / Redis 14: run
at the same time, the two would empty each other's registry and Redis. Never point it at a
database you care about. `--py-spy` needs `pip install py-spy`.

1. Startup: the monitor is started `--repeat` times against the 50K-PV simulated IOC; the
   benchmark polls Redis every 10 ms and listens to the monitor's change notices to time when
   every setpoint address, then every address (readbacks, config addresses), has its value in
   Redis, and checks that all of them are connected. An in-process run of monitor.Monitor
   (`--driver`) gives the breakdown: registry load, channel creation, connection, values, flush.
2. Idle: CPU and RSS of the monitor with the 50K PVs subscribed (about 1,000 of them change at
   1 Hz), over `--window` seconds.
3. Load: for each offered load L (thousands of updates/s), an IOC serving L*100 `calc` records
   scanned at 10 Hz (CALC "RNDM") plus static `ao` records up to `--pvs` in all, and a registry
   of the same addresses. The monitor runs `--duration` seconds; the medians of its heartbeats
   (updates/s, writes/s, p95 age IOC timestamp -> Redis write) over the steady part are reported
   with the CPU of the monitor, the IOC and Redis (they share the machine's cores).

`--profile SECONDS` adds a cProfile run of the monitor loop (in-process driver) at the highest
load, printing where the time goes.

`--protocol ca,pva,mixed` runs the whole benchmark once per registry, one after the other, and
prints their figures side by side at the end (so they come from the same run): `ca` as above;
`pva` the simulated pvAccess server's set (`manage.py run_sim_pva`: doubles, integers, booleans,
strings, arrays, NTEnums, an NTTable) as ``pva://`` addresses, its load cases the same server
posting L thousand new values a second over its doubles (`--updates-per-second`), sharded over
`--pva-servers` processes (TCP ports from --port + 10, each UDP port the next); `mixed` half of
each (the Channel Access half of the PVs and of the offered load, the pvAccess half). Server CPU
is the IOC's and every pvAccess server's together.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from functools import partial
from pathlib import Path

import smoke
from monitor_children import driver, load_db_text, serve_db
from monitor_processes import (
    SENTINEL_KEY,
    CpuMeter,
    LineReader,
    check_undisturbed,
    retried,
    rss_mb,
    spawn,
    stop,
    wait_for_file,
)
from monitor_report import report, side_by_side

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pvs import sim_pva  # noqa: E402  (pure: no Django, no p4p)
from pvs.sim import CSV_HEADER  # noqa: E402  (pure)

BENCH = Path(__file__).resolve()
PYTHON = sys.executable
SIM_PREFIX = "BENCHSIM:"  # change notices are global to the Redis server: keep names our own
LOAD_PREFIX = "BENCHMON:R"
PVA_LOAD_PREFIX = "BENCHMON:"
PROTOCOLS = ("ca", "pva", "mixed")
PVA_PORT_OFFSET = 10  # the first pvAccess server's TCP port is --port + 10


def split(protocol: str, pvs: int) -> tuple[int, int]:
    """How many of `pvs` PVs (or of an offered load) speak Channel Access and pvAccess."""
    pva = {"ca": 0, "pva": pvs, "mixed": pvs - pvs // 2}[protocol]
    return pvs - pva, pva


def pva_registry_rows(names: list[str]) -> str:
    """CSV rows (the simulated IOC's columns) of `names` as ``pva://`` setpoints, no readbacks."""
    return "".join(f"pva://{name},,pvAccess bench{',' * 9}\n" for name in names)


# The benchmark ----------------------------------------------------------------------------------


class Bench:
    def __init__(self, args):
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="squirrel-bench-monitor-"))
        self.procs: list[subprocess.Popen] = []
        from django.conf import settings

        from monitor import live

        self.live = live
        self.redis = live.redis_client()
        self.redis_pid = int(self.redis.info("server")["process_id"])
        port = args.port
        self.env = {
            **os.environ,  # includes the EPICS_* loopback defaults that settings set
            "PATH": f"{Path(PYTHON).parent}:{os.environ.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1",
            "DJANGO_SETTINGS_MODULE": "squirrel_site.settings",
            "SQUIRREL_DB_NAME": settings.DATABASES["default"]["NAME"],
            "SQUIRREL_REDIS_URL": settings.REDIS_URL,
            "SQUIRREL_SECRET_KEY": "bench",
            "EPICS_CA_SERVER_PORT": str(port),
            "EPICS_CAS_SERVER_PORT": str(port),
            "EPICS_CA_REPEATER_PORT": str(port + 1),
            "EPICS_PVA_AUTO_ADDR_LIST": "NO",
            "EPICS_PVA_ADDR_LIST": " ".join(f"127.0.0.1:{p + 1}" for p in self.pva_ports()),
        }
        self.protocol = "ca"
        self.ioc = None
        self.servers: list[subprocess.Popen] = []  # every server process of the current case
        self.log(f"logs in {self.tmp}; Redis {settings.REDIS_URL}; CA port {port}")

    def pva_ports(self) -> list[int]:
        """TCP ports of the pvAccess servers (each one's UDP search port is the next)."""
        base = self.args.port + PVA_PORT_OFFSET
        return [base + 2 * shard for shard in range(self.args.pva_servers)]

    def server_pids(self) -> dict[str, int]:
        return {f"server{i}": proc.pid for i, proc in enumerate(self.servers) if proc.poll() is None}

    def server_cpu(self, cpu: dict[str, float]) -> float:
        return sum(value for name, value in cpu.items() if name.startswith("server"))

    def stop_servers(self) -> None:
        for proc in self.servers:
            self.stop(proc)
        self.servers = []
        self.ioc = None

    def start_pva(self, pvs: int, prefix: str, per_second: int = 0) -> list[subprocess.Popen]:
        """`--pva-servers` run_sim_pva processes sharing `pvs` PVs named `prefix`..., together
        posting `per_second` new values a second."""
        shards = self.args.pva_servers
        procs = []
        for shard, port in enumerate(self.pva_ports()):
            ready = self.tmp / f"pva{shard}.ready"
            cmd = [
                PYTHON,
                "manage.py",
                "run_sim_pva",
                "--pvs",
                str(pvs),
                "--prefix",
                prefix,
                "--port",
                str(port),
                "--shard",
                str(shard),
                "--shards",
                str(shards),
                "--updates-per-second",
                str(per_second // shards),
                "--ready-file",
                str(ready),
            ]
            proc = self.start(cmd, "pva server", log=self.tmp / f"pva{shard}_{per_second}.log")
            wait_for_file(ready, proc, 180, "run_sim_pva")
            procs.append(proc)
        self.log(f"pvAccess servers ({pvs} PVs over {shards}, {per_second} updates/s in all) ready")
        return procs

    def log(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    def start(self, cmd, name, **kw) -> subprocess.Popen:
        proc = spawn(cmd, self.env, **kw)
        self.procs.append(proc)
        return proc

    def stop(self, proc) -> None:
        stop(proc)
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(list(self.procs)):
            self.stop(proc)

    # Pieces

    def start_repeater(self) -> None:
        """Our own caRepeater on a private port, so libca does not launch one that outlives us."""
        self.repeater = self.start([str(Path(PYTHON).parent / "caRepeater")], "repeater", log=self.tmp / "repeater.log")
        time.sleep(0.5)

    def start_sim_ioc(self, pvs: int, registry: Path) -> subprocess.Popen:
        ready = self.tmp / "sim.ready"
        cmd = [
            PYTHON,
            "manage.py",
            "run_sim_ioc",
            "--pvs",
            str(pvs),
            "--prefix",
            SIM_PREFIX,
            "--port",
            str(self.args.port),
            "--registry-csv",
            str(registry),
            "--ready-file",
            str(ready),
        ]
        proc = self.start(cmd, "sim ioc", log=self.tmp / "sim_ioc.log")
        took = wait_for_file(ready, proc, 180, "run_sim_ioc")
        self.log(f"simulated IOC ({pvs} PVs) ready in {took:.1f} s (incl. generation), pid {proc.pid}")
        return proc

    def start_load_ioc(self, names: list[str], changing: int) -> subprocess.Popen:
        db, ready = self.tmp / f"load{changing}.db", self.tmp / f"load{changing}.ready"
        db.write_text(load_db_text(names, changing))
        cmd = [PYTHON, str(BENCH), "--serve-db", str(db), "--port", str(self.args.port), "--ready-file", str(ready)]
        proc = self.start(cmd, "load ioc", log=self.tmp / f"load_ioc{changing}.log")
        took = wait_for_file(ready, proc, 120, "load IOC")
        self.log(f"load IOC ({changing} calc at 10 Hz + {len(names) - changing} ao) ready in {took:.1f} s")
        return proc

    def start_monitor(self, name: str):
        cmd = [PYTHON, "manage.py", "monitor_pvs", *self.args.monitor_arg]
        proc = self.start(cmd, "monitor", pipe_stderr=True)
        reader = LineReader(proc.stderr, self.tmp / f"{name}.log")
        reader.start()
        return proc, reader

    def import_registry(self, content: bytes, name: str) -> None:
        from bench_import import empty_registry

        from pvs.importers import import_pvs

        empty_registry()
        report = import_pvs(name, content, dry_run=False)
        if not report.ok:
            raise RuntimeError(f"registry import failed: {report.errors[:3]}")
        self.log(f"registry: imported {report.new} PVs")

    def expected_addresses(self) -> tuple[set[str], set[str]]:
        from monitor.live import Shard
        from monitor.monitor import registry_addresses
        from pvs.models import PV

        setpoints = set(PV.objects.values_list("setpoint_address", flat=True))
        return setpoints, registry_addresses(Shard(0, 1))

    def wait_connected(self, total: int, timeout: float = 90) -> float:
        """Seconds until every address has a value in Redis."""
        start = time.monotonic()
        while self.redis.hlen(self.live.VALUES_KEY) < total:
            if time.monotonic() - start > timeout:
                raise RuntimeError(f"only {self.redis.hlen(self.live.VALUES_KEY)}/{total} values after {timeout} s")
            time.sleep(0.05)
        return time.monotonic() - start

    # Startup

    def startup_once(self, setpoints: set[str], everything: set[str], idle_window: float = 0.0) -> dict:
        import msgpack

        live, r = self.live, self.redis
        r.flushdb()
        r.set(SENTINEL_KEY, 1)
        first_seen: dict[str, float] = {}
        pubsub = r.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(live.changes_channel())
        pubsub.get_message(timeout=1.0)
        done = threading.Event()

        def listen():
            while not done.is_set():
                message = pubsub.get_message(timeout=0.05)
                if message and message["type"] == "message":
                    now = time.time()
                    for address in msgpack.unpackb(message["data"]):
                        first_seen.setdefault(address, now)

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        total = len(everything)
        polls = []
        meter = CpuMeter({**self.server_pids(), "redis": self.redis_pid}).start()
        t_spawn = time.time()
        proc, reader = self.start_monitor(f"monitor_startup_{len(polls)}_{int(t_spawn)}")
        result = {}
        try:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise RuntimeError(f"monitor exited with {proc.returncode}; see {self.tmp}")
                pipe = r.pipeline(transaction=False)
                pipe.hlen(live.VALUES_KEY)
                pipe.hlen(live.META_KEY)
                n_values, n_meta = pipe.execute()
                polls.append((time.time(), n_values, n_meta))
                if n_values >= total and len(first_seen.keys() & everything) == total:
                    break
                time.sleep(0.01)
            else:
                raise RuntimeError(f"startup: {polls[-1][1]}/{total} values after 90 s")
            # An address with no value within the monitor's connect grace (3 s) is first written
            # as disconnected, then its value when it comes: wait for every one connected.
            while True:
                values = live.read_all_values(r)
                connected_at = time.time()
                if sum(1 for a in everything if a in values and values[a].connected) == total:
                    break
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"startup: not every address connected after 90 s; see {self.tmp}")
                time.sleep(0.1)
            startup_cpu = meter.stop()
            startup_cpu["servers"] = self.server_cpu(startup_cpu)
            time.sleep(0.3)
            done.set()
            listener.join()
            pubsub.close()
            check_undisturbed(r, reader)
            values = live.read_all_values(r)
            missing = everything - values.keys()
            disconnected = [a for a in everything if a in values and not values[a].connected]
            if missing or disconnected:
                raise RuntimeError(f"startup: {len(missing)} addresses missing, {len(disconnected)} disconnected")

            def rel(t):
                return None if t is None else t - t_spawn

            result = {
                "django ready (log 'starting')": rel(reader.first("starting")),
                "lease taken (log 'leader')": rel(reader.first(": leader")),
                "registry loaded + channels created (log)": rel(reader.first("Registry:")),
                "first value in Redis": rel(min(first_seen.values())),
                "all setpoint addresses in Redis": rel(max(first_seen[a] for a in setpoints)),
                "all addresses in Redis": rel(max(first_seen[a] for a in everything)),
                "all metadata in Redis (HLEN poll)": rel(next((t for t, _, m in polls if m >= total), None)),
                "all values in Redis (HLEN poll)": rel(next((t for t, v, _ in polls if v >= total), None)),
                "all addresses connected in Redis (poll)": rel(connected_at),
                "_cpu": startup_cpu,
            }
            if idle_window:
                time.sleep(5)  # let the startup burst and the first heartbeats pass
                meter = CpuMeter({"monitor": proc.pid, **self.server_pids(), "redis": self.redis_pid}).start()
                beats = []
                end = time.monotonic() + idle_window
                while time.monotonic() < end:
                    time.sleep(1)
                    beats.extend(own_beats(live.read_heartbeats(r), proc.pid))
                cpu = meter.stop()
                cpu["servers"] = self.server_cpu(cpu)
                result["idle"] = {
                    "cpu": cpu,
                    "rss_mb": rss_mb(proc.pid),
                    "updates_per_s": statistics.median(b["updates_per_s"] for b in beats) if beats else None,
                    "p95_age_s": statistics.median(b["p95_age_s"] for b in beats) if beats else None,
                    "connected": beats[-1]["connected"] if beats else None,
                }
                check_undisturbed(r, reader)
        finally:
            done.set()
            self.stop(proc)
        return result

    def run_driver(self, seconds: float, profile: bool, profile_startup: bool = False) -> dict:
        cmd = [PYTHON, str(BENCH), "--driver", str(seconds)] + (["--driver-profile"] if profile else [])
        cmd += ["--driver-profile-startup"] if profile_startup else []
        self.redis.flushdb()
        proc = self.start(cmd, "driver", log=self.tmp / "driver.log")
        try:
            proc.wait(seconds + 180)
        except subprocess.TimeoutExpired:
            raise RuntimeError("driver did not finish") from None
        finally:
            self.stop(proc)
        for line in (self.tmp / "driver.log").read_text().splitlines()[::-1]:
            if line.startswith("DRIVER-RESULT "):
                return json.loads(line[len("DRIVER-RESULT ") :])
        raise RuntimeError(f"driver printed no result; see {self.tmp / 'driver.log'}")

    # Load

    def start_startup_servers(self) -> bytes:
        """The servers of the startup case's registry (self.protocol); the registry's CSV."""
        ca, pva = split(self.protocol, self.args.pvs)
        csv = ",".join(CSV_HEADER) + "\n"
        if ca:
            registry = self.tmp / "sim_registry.csv"
            self.ioc = self.start_sim_ioc(ca, registry)
            self.servers.append(self.ioc)
            csv = registry.read_text()
        if pva:
            self.servers += self.start_pva(pva, SIM_PREFIX)
            csv += pva_registry_rows([pv.name for pv in sim_pva.generate(pva, SIM_PREFIX)])
        return csv.encode()

    def load_names(self) -> list[str]:
        """The load cases' registry: Channel Access `calc`/`ao` names, then pvAccess ones."""
        ca, pva = split(self.protocol, self.args.pvs)
        names = [f"{LOAD_PREFIX}{i:05d}" for i in range(ca)]
        return names + [f"pva://{pv.name}" for pv in (sim_pva.generate(pva, PVA_LOAD_PREFIX) if pva else [])]

    def start_load_servers(self, names: list[str], kilo: int) -> None:
        """Servers offering `kilo` thousand updates a second over `names` (split by protocol)."""
        ca, pva = split(self.protocol, self.args.pvs)
        ca_load, pva_load = split(self.protocol, kilo * 1000)
        if ca:
            self.ioc = self.start_load_ioc(names[:ca], ca_load // 10)
            self.servers.append(self.ioc)
        if pva:
            self.servers += self.start_pva(pva, PVA_LOAD_PREFIX, pva_load)

    def load_case(self, names: list[str], kilo: int, py_spy: float = 0.0) -> dict:
        live, r, args = self.live, self.redis, self.args
        self.start_load_servers(names, kilo)
        try:
            r.flushdb()
            r.set(SENTINEL_KEY, 1)
            proc, reader = self.start_monitor(f"monitor_load{kilo}k")
            try:
                took = self.wait_connected(len(names))
                self.log(f"  {kilo}K/s: all {len(names)} values in Redis after {took:.1f} s; warming up")
                time.sleep(args.warmup)
                meter = CpuMeter({"monitor": proc.pid, **self.server_pids(), "redis": self.redis_pid}).start()
                beats, seen, rss = [], set(), []
                end = time.monotonic() + args.duration
                while time.monotonic() < end:
                    time.sleep(0.5)
                    for beat in own_beats(live.read_heartbeats(r), proc.pid):
                        if beat.get("written_at") not in seen:
                            seen.add(beat.get("written_at"))
                            beats.append(beat)
                    rss.append(rss_mb(proc.pid))
                cpu = meter.stop()
                cpu["servers"] = self.server_cpu(cpu)
                if proc.poll() is not None or len(beats) < 3:
                    raise RuntimeError(f"load {kilo}K: monitor died or no heartbeats ({len(beats)})")
                check_undisturbed(r, reader)
                if py_spy:
                    spy_profile = self.py_spy(proc.pid, py_spy, f"pyspy_{kilo}k.txt")
            finally:
                self.stop(proc)
        finally:
            self.stop_servers()
        med = statistics.median
        return {
            "offered": kilo * 1000,
            "updates_per_s": med(b["updates_per_s"] for b in beats),
            "writes_per_s": med(b["writes_per_s"] for b in beats),
            "p95_age_s": med(b["p95_age_s"] for b in beats),
            "p95_age_max_s": max(b["p95_age_s"] for b in beats),
            "beats": len(beats),
            "cpu": cpu,
            "rss_mb": max(rss),
            **({"py_spy": spy_profile} if py_spy else {}),
        }

    def py_spy(self, pid: int, seconds: float, name: str) -> list[str]:
        """Sample a process with py-spy (wall clock, idle included); a summary by function."""
        out = self.tmp / name
        cmd = [
            str(Path(PYTHON).parent / "py-spy"),
            "record",
            "--idle",
            "--rate",
            "200",
            "--duration",
            str(int(seconds)),
            "--format",
            "raw",
            "--output",
            str(out),
            "--pid",
            str(pid),
        ]
        spy = self.start(cmd, "py-spy", log=self.tmp / "py-spy.log")
        try:
            spy.wait(seconds + 30)
        except subprocess.TimeoutExpired:
            pass
        finally:
            self.stop(spy)
        if not out.exists():
            return [f"py-spy produced nothing; see {self.tmp / 'py-spy.log'}"]
        return summarize_collapsed(out)


def summarize_collapsed(path: Path, top: int = 18) -> list[str]:
    """Main-thread samples of a py-spy raw (collapsed) profile: self time per function, and the
    inclusive share of the monitor loop's main parts."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    parts = (
        "poll (pvs/epics_io.py",
        "_drain (pvs/epics_io.py",
        "_event_callback",
        "_meta_callback",
        "absorb (monitor/monitor.py",
        "flush (monitor/monitor.py",
        "write (monitor/live.py",
        "_write_chunks",
        "publish_changes",
        "execute (redis",
        "heartbeat (monitor/monitor.py",
        "sync_registry",
        "mark_never_connected",
    )
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not count.isdigit() or "step (monitor/monitor.py" not in stack:
            continue  # only the monitor loop's thread
        n = int(count)
        total += n
        leaf = frames[-1].split(":")[0] + ")" if ":" in frames[-1] else frames[-1]
        own[leaf] = own.get(leaf, 0) + n
        for part in parts:
            if part in stack:
                inclusive[part] = inclusive.get(part, 0) + n
    if not total:
        return ["py-spy: no samples of the monitor loop"]
    lines = [f"py-spy, {total} samples of the monitor loop's thread (wall clock, waiting included)", "self:"]
    for name, n in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"  {100 * n / total:5.1f}%  {name}")
    lines.append("inclusive:")
    for part in parts:
        if part in inclusive:
            lines.append(f"  {100 * inclusive[part] / total:5.1f}%  {part}")
    return lines


def own_beats(beats: list[dict], pid: int) -> list[dict]:
    """Heartbeats our monitor wrote (owner "host:pid"), ignoring anyone else's in the same DB."""
    return [b for b in beats if str(b.get("owner", "")).endswith(f":{pid}") and "updates_per_s" in b]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pvs", type=int, default=50_000, help="registry PVs (default 50000)")
    parser.add_argument("--repeat", type=int, default=3, help="monitor starts against the sim IOC (default 3)")
    parser.add_argument("--window", type=float, default=10.0, help="idle measurement window, s (default 10)")
    parser.add_argument("--loads", default="10,20,30,40", help="offered loads in thousands of updates/s")
    parser.add_argument("--duration", type=float, default=25.0, help="measurement window per load, s (default 25)")
    parser.add_argument("--warmup", type=float, default=4.0, help="seconds after connection before measuring")
    parser.add_argument(
        "--profile",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="also cProfile the monitor loop in-process at the highest load for SECONDS",
    )
    parser.add_argument(
        "--profile-startup",
        action="store_true",
        help="cProfile the in-process startup run (the breakdown's times then include its overhead)",
    )
    parser.add_argument(
        "--py-spy",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="sample the monitor process with py-spy for SECONDS after the highest load's window",
    )
    parser.add_argument("--port", type=int, default=15977, help="private CA server port (default 15977)")
    parser.add_argument("--skip-startup", action="store_true")
    parser.add_argument(
        "--monitor-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="an argument for monitor_pvs, repeatable (e.g. --monitor-arg=--stage-timeout=0)",
    )
    parser.add_argument("--skip-load", action="store_true")
    parser.add_argument("--protocol", default="ca", help="ca, pva or mixed, or several comma-separated (in turn)")
    parser.add_argument(
        "--pva-servers", type=int, default=1, help="run_sim_pva processes sharing the pvAccess PVs (default 1)"
    )
    # Child-process roles.
    parser.add_argument("--serve-db", help=argparse.SUPPRESS)
    parser.add_argument("--ready-file", help=argparse.SUPPRESS)
    parser.add_argument("--driver", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--driver-profile", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--driver-profile-startup", action="store_true", help=argparse.SUPPRESS)
    args = smoke.parse_args(parser, pvs=300, repeat=1, window=1.0, loads="1", duration=4.0, warmup=0.5)
    if args.serve_db:
        serve_db(args.serve_db, args.port, args.ready_file)
        return 0

    # Own database and Redis DB: bench_snapshot.py empties `squirrel_bench` and FLUSHes Redis 14,
    # which (run at the same time) takes the monitor's lease away and mixes up the registry. A
    # case whose Redis DB was flushed by someone else anyway is detected and run again.
    os.environ.setdefault("SQUIRREL_DB_NAME", "squirrel_bench_monitor")
    os.environ.setdefault("SQUIRREL_SECRET_KEY", "bench")
    os.environ["SQUIRREL_REDIS_URL"] = os.environ.get("SQUIRREL_BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
    sys.path.insert(0, str(BENCH.parent))
    if args.driver is not None:
        driver(args.driver, args.driver_profile, args.driver_profile_startup)
        return 0

    from bench_import import create_database  # sets up Django

    protocols = [protocol for protocol in args.protocol.split(",") if protocol]
    if not protocols or set(protocols) - set(PROTOCOLS):
        parser.error(f"--protocol: one or more of {', '.join(PROTOCOLS)}, not {args.protocol!r}")
    create_database()
    bench = Bench(args)
    results = {}
    try:
        bench.start_repeater()
        for protocol in protocols:
            bench.protocol = protocol
            bench.log(f"--- protocol {protocol}: {' + '.join(map(str, split(protocol, args.pvs)))} PVs (CA + pvAccess)")
            results[protocol] = measure(bench, args)
    except RuntimeError as exc:
        print(f"bench_monitor: could not measure: {exc}", file=sys.stderr)
        return 1
    finally:
        bench.stop_all()
        bench.redis.flushdb()

    for protocol, measured in results.items():
        if len(results) > 1:
            print(f"\n===== {protocol} =====")
        report(args, *measured)
    if len(results) > 1:
        side_by_side(args, results)
    return 0


def measure(bench: Bench, args) -> tuple:
    """Startup, idle, breakdown, loads and profile of the registry of `bench.protocol`."""
    startup, idle, breakdown, loads, profile = [], None, None, [], None
    if not args.skip_startup:
        bench.import_registry(bench.start_startup_servers(), "sim_registry.csv")
        setpoints, everything = bench.expected_addresses()
        bench.log(f"startup: {len(setpoints)} setpoint addresses, {len(everything)} addresses in all")
        for i in range(args.repeat):
            last = i == args.repeat - 1
            result = retried(
                partial(bench.startup_once, setpoints, everything, idle_window=args.window if last else 0),
                f"startup run {i + 1}",
            )
            if "idle" in result:
                idle = result.pop("idle")
            startup.append(result)
            bench.log(
                f"  run {i + 1}: setpoints {result['all setpoint addresses in Redis']:.2f} s, "
                f"all {result['all addresses in Redis']:.2f} s"
            )
        breakdown = bench.run_driver(0, profile=False, profile_startup=args.profile_startup)
        bench.stop_servers()
    if not args.skip_load:
        names = bench.load_names()
        csv = "Setpoint,Readback,Description\n" + "".join(f"{n},,load bench\n" for n in names)
        bench.import_registry(csv.encode(), "load_registry.csv")
        kilos = [int(k) for k in args.loads.split(",") if k.strip()]
        for kilo in kilos:
            spy = args.py_spy if kilo == max(kilos) else 0
            loads.append(retried(partial(bench.load_case, names, kilo, py_spy=spy), f"load {kilo}K"))
            c = loads[-1]
            bench.log(
                f"  {kilo}K/s offered: {c['updates_per_s']:.0f} updates/s, p95 age {c['p95_age_s']:.3f} s, "
                f"monitor CPU {c['cpu']['monitor']:.0f}%, servers {c['cpu']['servers']:.0f}%"
            )
        if args.profile:
            bench.start_load_servers(names, max(kilos))
            try:
                profile = bench.run_driver(args.profile, profile=True)
            finally:
                bench.stop_servers()
    return startup, idle, breakdown, loads, profile


if __name__ == "__main__":
    sys.exit(main())
