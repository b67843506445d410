"""What bench_monitor.py runs in its child processes (each started as `bench_monitor.py --serve-db`
or `--driver`): the Channel Access IOC for the load cases, and the in-process driver that times a
monitor's start stage by stage and profiles it."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


# The IOC for the load cases (runs in a child process; no Django) ------------------------------


def load_db_text(names: list[str], changing: int, scan: str = ".1 second") -> str:
    """`changing` calc records scanned every `scan` (10 Hz) with a random value, then static ao records."""
    parts = []
    for i, name in enumerate(names):
        if i < changing:
            parts.append(f'record(calc, "{name}") {{\n  field(SCAN, "{scan}")\n  field(CALC, "RNDM")\n}}\n')
        else:
            parts.append(f'record(ao, "{name}") {{\n  field(VAL, "{i}")\n  field(PINI, "YES")\n}}\n')
    return "".join(parts)


def serve_db(db_file: str, port: int, ready_file: str) -> None:
    """Serve a .db file exactly as run_sim_ioc serves the simulated accelerator."""
    sys.path.insert(0, str(ROOT))
    from types import SimpleNamespace

    from pvs import sim
    from pvs.management.commands.run_sim_ioc import set_server_port, start_ioc

    text = Path(db_file).read_text()
    stop_event = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop_event.set())
    signal.signal(signal.SIGINT, lambda *_: stop_event.set())
    set_server_port(port)
    start_ioc(
        SimpleNamespace(
            db_text=text,
            acf_text=sim.ACF_TEXT,
            record_count=text.count("record("),
            array_values=[],
            string_array_values=[],
        )
    )
    Path(ready_file).touch()
    stop_event.wait()


# In-process driver: startup breakdown and profile (runs in a child process) ---------------------


def driver(run_seconds: float, profile: bool, profile_startup: bool = False) -> None:
    """Step a Monitor in this process, timing its startup; optionally profile the steady state."""
    import cProfile
    import io
    import pstats

    t_start = time.perf_counter()
    import bench_import  # noqa: F401  (Django setup)

    t_django = time.perf_counter()
    import monitor.monitor as mm
    from monitor import live

    client = live.redis_client()
    client.flushdb()
    marks = {"django setup": t_django - t_start}
    timers = {"registry load": 0.0, "channel create": 0.0}
    real_addresses, real_channelset = mm.registry_addresses, mm.ChannelSet

    def timed_addresses(shard, elsewhere=None):
        t = time.perf_counter()
        try:
            return real_addresses(shard, elsewhere)
        finally:
            timers["registry load"] += time.perf_counter() - t

    class TimedChannelSet(real_channelset):
        def add(self, addresses):
            t = time.perf_counter()
            try:
                return super().add(addresses)
            finally:
                timers["channel create"] += time.perf_counter() - t

    mm.registry_addresses, mm.ChannelSet = timed_addresses, TimedChannelSet  # instrumentation only
    monitor = mm.Monitor(mm.MonitorSettings())
    t0 = time.perf_counter()
    assert monitor.try_lead(), "lease not acquired"
    total = len(monitor.addresses)
    connected, valued, events = set(), set(), {}
    real_absorb, real_flush = monitor.absorb, monitor.flush

    def absorb(result):
        now = time.perf_counter() - t0
        connected.update(result.connected)
        valued.update(r.address for r in result.readings)
        if result.connected and "first connection" not in events:
            events["first connection"] = now
        if result.readings and "first value received" not in events:
            events["first value received"] = now
        if len(connected) == total and "all connected" not in events:
            events["all connected"] = now
        if len(valued) == total and "all values received" not in events:
            events["all values received"] = now
        real_absorb(result)

    def flush():
        ok = real_flush()
        now = time.perf_counter() - t0
        if "first flush done" not in events and monitor._stats.written:
            events["first flush done"] = now
        if "all values received" in events and "all values in Redis" not in events and not monitor._pending:
            events["all values in Redis"] = now
        return ok

    monitor.absorb, monitor.flush = absorb, flush
    deadline = time.monotonic() + 60
    startup_profiler = cProfile.Profile() if profile_startup else None
    if startup_profiler:
        startup_profiler.enable()
    while "all values in Redis" not in events and time.monotonic() < deadline:
        monitor.step()
    result = {"addresses": total, "marks": {**marks, **timers}, "events": events}
    if startup_profiler:
        startup_profiler.disable()
        out = io.StringIO()
        pstats.Stats(startup_profiler, stream=out).sort_stats("tottime").print_stats(20)
        result["profile_startup"] = out.getvalue()
    if run_seconds > 0:
        profiler = cProfile.Profile() if profile else None
        end = time.monotonic() + run_seconds
        beats = []
        if profiler:
            profiler.enable()
        next_beat = time.monotonic() + 1
        while time.monotonic() < end:
            monitor.step()
            if time.monotonic() >= next_beat:
                next_beat += 1
                beat = live.read_heartbeats(client)
                if beat:
                    beats.append(beat[0])
        if profiler:
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
            result["profile_tottime"] = out.getvalue()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
            result["profile_cumulative"] = out.getvalue()
        result["heartbeats"] = beats[2:]
    monitor.shutdown()
    print("DRIVER-RESULT " + json.dumps(result))
