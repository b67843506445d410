"""Where the time goes with pvAccess: p4p clients against the simulated pvAccess server.

    .venv/bin/python benchmarks/bench_pva.py [--sizes 5000,10000,20000,50000] [--servers 1,2]
        [--modes naive,batched,get,put,put_window] [--timeout 60] [--port 15990]

For each size and number of server processes, starts `manage.py run_sim_pva --shards S` (each
shard on its own TCP/UDP port pair from --port, stopped by PID at the end), then runs each client
mode in a fresh process of its own and prints, per run:

- naive: p4p's threaded ``Context.monitor()`` per channel, a Python callback per update
  (p4p.client.thread, values unwrapped);
- batched: ``pvs.pva_bulk.ChannelSet`` (p4p's ClientMonitor below p4p.client.raw, spread over
  pva_bulk.CONTEXTS contexts: one queue of ready channels, each update popped and converted to
  the project's Value in one thread);
- get: ``pvs.pva_bulk.PvaService.read`` of every PV in one call;
- put: ``pvs.pva_bulk.PvaService.put`` of every writable PV (all but the NTTable) with
  completion (``record[block=true]``), all at once;
- put_window: the same with at most 2000 puts unfinished at a time (``max_outstanding``, as a
  restore's stage puts: snapshots.restore.stages.MAX_OUTSTANDING).

Figures: wall time until every PV answered (or how many did by --timeout), the times at which
half and 99% had, the client process's CPU seconds (user + system, all its threads; then by
thread name) and the server processes' CPU seconds over the same interval (from /proc). Start-up of the client (import,
context) is outside the timed interval. The machine's load changes the wall times, not the CPU
seconds: quote both with `uptime`.
"""

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import smoke

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pvs import sim_pva  # noqa: E402  (pure: no Django, no p4p)

MODES = ("naive", "batched", "get", "put", "put_window")
WINDOW = 2000  # put_window's max_outstanding
TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of process `pid` so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def threads_cpu() -> dict[str, float]:
    """CPU seconds of this process's threads so far, summed by thread name (pvxs names its own:
    PVXCTCP is a client context's network thread; "python" the interpreter's main thread)."""
    by_name: dict[str, float] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            stat = Path(f"/proc/self/task/{tid}/stat").read_text()
        except OSError:
            continue  # ended meanwhile
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        by_name[name] = by_name.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / TICKS
    return by_name


SEARCHES = ("udp", "tcp", "both")


def client_env(port: int, servers: int, contexts: int, search: str) -> dict[str, str]:
    """The client's environment: `contexts` client contexts (SQUIRREL_PVA_CONTEXTS), searching
    each server's UDP port on loopback (`search` udp), or asking the servers themselves over TCP
    (EPICS_PVA_NAME_SERVERS: `search` tcp), or both."""
    udp = " ".join(f"127.0.0.1:{port + 2 * i + 1}" for i in range(servers)) if search != "tcp" else ""
    tcp = " ".join(f"127.0.0.1:{port + 2 * i}" for i in range(servers)) if search != "udp" else ""
    return {
        **os.environ,
        "SQUIRREL_PVA_CONTEXTS": str(contexts),
        "EPICS_PVA_AUTO_ADDR_LIST": "NO",
        "EPICS_PVA_ADDR_LIST": udp,
        "EPICS_PVA_NAME_SERVERS": tcp,
    }


def start_servers(size: int, servers: int, port: int, workdir: Path, timeout: float) -> list[subprocess.Popen]:
    env = {**os.environ, "SQUIRREL_SECRET_KEY": os.environ.get("SQUIRREL_SECRET_KEY", "benchmark-only")}
    env.setdefault("DJANGO_SETTINGS_MODULE", "squirrel_site.settings")
    processes = []
    for shard in range(servers):
        ready = workdir / f"ready{shard}"
        log = (workdir / f"server{shard}.log").open("w")
        command = [sys.executable, "manage.py", "run_sim_pva", "--pvs", str(size), "--port", str(port + 2 * shard)]
        command += ["--shard", str(shard), "--shards", str(servers), "--ready-file", str(ready)]
        processes.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
    deadline = time.monotonic() + timeout
    for shard, process in enumerate(processes):
        while not (workdir / f"ready{shard}").exists():
            if process.poll() is not None or time.monotonic() > deadline:
                stop_all(processes)
                sys.exit(f"pvAccess server {shard} did not start:\n{(workdir / f'server{shard}.log').read_text()}")
            time.sleep(0.1)
    return processes


def stop_all(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_client(
    mode: str, size: int, servers: list[subprocess.Popen], port: int, timeout: float, contexts: int, search: str
) -> dict:
    command = [sys.executable, __file__, "--child", mode, "--sizes", str(size), "--timeout", str(timeout)]
    env = client_env(port, len(servers), contexts, search)
    child = subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    # The child says when its context is up; the servers' CPU is counted from then.
    line = child.stdout.readline()
    if line.strip() != "ready":
        child.kill()
        sys.exit(f"the {mode} client did not start: {line!r}")
    before = sum(process_cpu(s.pid) for s in servers)
    child.stdin.write("go\n")
    child.stdin.flush()
    out, _ = child.communicate(timeout=timeout + 120)
    result = json.loads(out.strip().splitlines()[-1])
    result["server_cpu"] = sum(process_cpu(s.pid) for s in servers) - before
    if child.returncode != 0:
        sys.exit(f"the {mode} client exited {child.returncode}")
    return result


# The client process: one mode, timed from "go".


class Progress:
    def __init__(self, total: int):
        self.total, self.count, self.start = total, 0, time.monotonic()
        self.marks = {}

    def one(self) -> None:
        self.count += 1
        for name, share in (("t50", 0.5), ("t99", 0.99), ("t100", 1.0)):
            if name not in self.marks and self.count >= share * self.total:
                self.marks[name] = time.monotonic() - self.start

    def done(self) -> bool:
        return self.count >= self.total


def child(mode: str, size: int, timeout: float) -> None:
    pvs = sim_pva.generate(size)
    names = [pv.name for pv in pvs]
    if mode == "naive":
        import threading

        from p4p.client.thread import Context

        context = Context("pva")
        lock, finished = threading.Lock(), threading.Event()
    else:
        from pvs import pva_bulk
        from pvs.epics_io import PutRequest

        pva_bulk.client_contexts()
    print("ready", flush=True)
    sys.stdin.readline()
    cpu0, threads0 = own_cpu(), threads_cpu()
    progress = Progress(len(names))
    if mode == "naive":
        seen = set()

        def callback(name):
            def update(value):
                with lock:
                    if name not in seen:
                        seen.add(name)
                        progress.one()
                        if progress.done():
                            finished.set()

            return update

        subscriptions = [context.monitor(name, callback(name)) for name in names]
        finished.wait(timeout)
        with lock:
            pass
        del subscriptions
    elif mode == "batched":
        channels = pva_bulk.ChannelSet()
        channels.add(names)
        seen = set()
        while not progress.done() and time.monotonic() - progress.start < timeout:
            for value in channels.poll(0.05).readings:
                if value.address not in seen:
                    seen.add(value.address)
                    progress.one()
    elif mode == "get":
        results = pva_bulk.pva_service().read(names, timeout)
        for result in results.values():
            if result.reading is not None:
                progress.one()
    else:
        writable = [pv for pv in pvs if pv.type != sim_pva.TABLE]
        progress.total = len(writable)
        requests = [PutRequest(pv.name, pv.value, wait=True) for pv in writable]
        window = WINDOW if mode == "put_window" else None
        for result in pva_bulk.pva_service().put(requests, timeout, window).values():
            if result.ok:
                progress.one()
    wall = time.monotonic() - progress.start
    report = {"total": progress.total, "answered": progress.count, "wall": wall, "client_cpu": own_cpu() - cpu0}
    if mode in ("get", "put"):
        # Their subscriptions and operations are closed in the background once every answer is
        # in (pva_bulk._Closer): what that costs after the timed interval.
        cpu1, start = own_cpu(), time.monotonic()
        pva_bulk._closer.wait(timeout)
        report["closing"] = (time.monotonic() - start, own_cpu() - cpu1)
    threads = {name: cpu - threads0.get(name, 0.0) for name, cpu in threads_cpu().items()}
    report["threads"] = {name: round(cpu, 2) for name, cpu in sorted(threads.items()) if cpu >= 0.05}
    report.update(progress.marks)
    print(json.dumps(report), flush=True)
    os._exit(0)  # skip tearing down 50,000 subscriptions: not what is measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="5000,10000,20000,50000", help="PV counts, comma-separated")
    parser.add_argument("--servers", default="1,2", help="server process counts, comma-separated")
    parser.add_argument("--modes", default=",".join(MODES), help=f"client modes ({', '.join(MODES)})")
    parser.add_argument(
        "--contexts", default="4", help="client context counts (SQUIRREL_PVA_CONTEXTS), comma-separated"
    )
    parser.add_argument(
        "--search",
        default="udp",
        help=f"how clients search, comma-separated ({', '.join(SEARCHES)}: UDP, TCP name servers)",
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds a client waits for every PV")
    parser.add_argument("--port", type=int, default=15990, help="first server's TCP port (UDP: next; then +2 each)")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = smoke.parse_args(parser, sizes="200", servers="1", timeout=20.0, contexts="2", search="udp,tcp")
    sizes = [int(size) for size in args.sizes.split(",")]
    if args.child:
        child(args.child, sizes[0], args.timeout)
        return
    modes = [mode for mode in args.modes.split(",") if mode]
    searches = [search for search in args.search.split(",") if search]
    unknown = (set(modes) - set(MODES)) | (set(searches) - set(SEARCHES))
    if unknown:
        sys.exit(f"unknown modes or searches: {', '.join(sorted(unknown))}")
    context_counts = [int(count) for count in args.contexts.split(",")]
    print(f"load: {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} {os.getloadavg()[2]:.1f} (1, 5, 15 min)")
    print(
        "size  servers ctx search mode     answered      all(s)  50%(s)  99%(s) client_cpu(s) server_cpu(s)  by thread"
    )
    for server_count in [int(count) for count in args.servers.split(",")]:
        for size in sizes:
            with tempfile.TemporaryDirectory(prefix="bench-pva-") as tmp:
                servers = start_servers(size, server_count, args.port, Path(tmp), timeout=300.0)
                try:
                    for contexts, search, mode in itertools.product(context_counts, searches, modes):
                        if mode == "naive" and contexts != context_counts[0]:
                            continue  # p4p's own one context: the count does not apply
                        r = run_client(mode, size, servers, args.port, args.timeout, contexts, search)
                        print(
                            f"{size:<6}{server_count:>7} {contexts:>3} {search:<6} {mode:<8} "
                            f"{r['answered']:>6}/{r['total']:<6}"
                            f"{_t(r.get('t100')):>8}{_t(r.get('t50')):>8}{_t(r.get('t99')):>8}"
                            f"{r['client_cpu']:>14.2f}{r['server_cpu']:>14.2f}  "
                            + " ".join(f"{name} {cpu:.2f}" for name, cpu in r["threads"].items())
                            + ("; then closing {:.2f} s, CPU {:.2f} s".format(*r["closing"]) if "closing" in r else ""),
                            flush=True,
                        )
                finally:
                    stop_all(servers)
    print(f"load: {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} {os.getloadavg()[2]:.1f} (1, 5, 15 min)")


def _t(seconds) -> str:
    return "-" if seconds is None else f"{seconds:.2f}"


if __name__ == "__main__":
    main()
