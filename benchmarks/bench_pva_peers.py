"""What the monitor's heartbeat pays to count pvAccess channels per server: pvs.pva_bulk.ChannelSet.peers.

    .venv/bin/python benchmarks/bench_pva_peers.py [--sizes 10000,50000] [--repeats 11] [--port 15990]

For each size, starts `manage.py run_sim_pva --pvs SIZE` on --port (TCP) and --port + 1 (UDP),
subscribes every PV with a ChannelSet (pva_bulk's contexts, SQUIRREL_PVA_CONTEXTS of them), waits
until all are connected, then calls peers() --repeats times (the monitor calls it once per
heartbeat, every second) and prints the median and the slowest call in ms, and how many channels
it named. The server is stopped by PID at the end. The machine's load changes the figures: quote
them with `uptime`.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import smoke

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def start_server(size: int, port: int, workdir: Path, timeout: float) -> subprocess.Popen:
    env = {**os.environ, "SQUIRREL_SECRET_KEY": os.environ.get("SQUIRREL_SECRET_KEY", "benchmark-only")}
    env.setdefault("DJANGO_SETTINGS_MODULE", "squirrel_site.settings")
    ready, log_path = workdir / "ready", workdir / "server.log"
    command = [sys.executable, "manage.py", "run_sim_pva", "--pvs", str(size), "--port", str(port)]
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [*command, "--ready-file", str(ready)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            sys.exit(f"the pvAccess server did not start:\n{log_path.read_text()}")
        time.sleep(0.1)
    return process


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def measure(size: int, port: int, repeats: int, timeout: float) -> dict:
    from pvs import pva_bulk, sim_pva

    contexts = pva_bulk.make_contexts(
        {"EPICS_PVA_AUTO_ADDR_LIST": "NO", "EPICS_PVA_ADDR_LIST": f"127.0.0.1:{port + 1}"}
    )
    channels = pva_bulk.ChannelSet(contexts)
    try:
        channels.add(f"pva://{pv.name}" for pv in sim_pva.generate(size))
        deadline = time.monotonic() + timeout
        while channels.connected_count() < size and time.monotonic() < deadline:
            channels.poll(0.1)
        connected = channels.connected_count()
        times, named = [], 0
        for _ in range(repeats):
            started = time.perf_counter()
            named = len(channels.peers())
            times.append(time.perf_counter() - started)
        return {"connected": connected, "named": named, "median": statistics.median(times), "max": max(times)}
    finally:
        channels.close()
        for context in contexts:
            context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,50000", help="comma-separated PV counts")
    parser.add_argument("--repeats", type=int, default=11, help="peers() calls per size")
    parser.add_argument("--port", type=int, default=15990, help="the server's TCP port (UDP: the next)")
    parser.add_argument("--timeout", type=float, default=120.0, help="s to wait for the server and the connections")
    args = smoke.parse_args(parser, sizes="200", repeats=1)
    print(f"{'PVs':>7} {'connected':>9} {'named':>7} {'median ms':>10} {'max ms':>8}")
    for size in (int(text) for text in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as workdir:
            server = start_server(size, args.port, Path(workdir), args.timeout)
            try:
                result = measure(size, args.port, args.repeats, args.timeout)
            finally:
                stop(server)
        print(
            f"{size:>7} {result['connected']:>9} {result['named']:>7} "
            f"{result['median'] * 1000:>10.1f} {result['max'] * 1000:>8.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
