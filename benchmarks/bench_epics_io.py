"""Time direct Channel Access reads and puts through pvs.epics_io.EpicsService at 50,000 PVs.

    .venv/bin/python benchmarks/bench_epics_io.py [--pvs 50000] [--repeat 5] [--port 15978]

Starts the simulated IOC (`manage.py run_sim_ioc`) on its own CA port as a subprocess and stops
it by PID at the end. Times: connecting every setpoint; reading all of them with the channels
connected (warm); putting every writable setpoint without completion, then reading them back to
confirm the IOC applied them; putting with completion (pairs complete after their readback delay
of 0.1-0.5 s, so the bound on outstanding puts matters).
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import smoke

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "squirrel_site.settings")
os.environ.setdefault("SQUIRREL_SECRET_KEY", "benchmark-only")

import django  # noqa: E402

django.setup()  # the settings put the loopback EPICS_* defaults into the environment

from sim_ioc import start_sim_ioc, stop_process  # noqa: E402

from pvs import sim  # noqa: E402

WRITABLE = (sim.PAIR, sim.INT, sim.ENUM, sim.STRING, sim.WAVEFORM)
LONG_TIMEOUT = 60.0  # s: generous, so a slow run shows as slow instead of as timeouts


def timed(function):
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def values_for(pvs: list[sim.SimPV], run: int) -> dict[str, object]:
    """A value per writable setpoint, different from the previous run's (and the initial one on odd runs)."""
    values = {}
    for pv in pvs:
        if pv.kind == sim.PAIR:
            values[pv.setpoint] = round(pv.value + (run % 2) * 0.5, 6)
        elif pv.kind == sim.INT:
            values[pv.setpoint] = pv.value + run % 2
        elif pv.kind == sim.ENUM:
            values[pv.setpoint] = (pv.value + run) % len(pv.labels)
        elif pv.kind == sim.STRING:
            values[pv.setpoint] = f"bench {run}"
        else:
            values[pv.setpoint] = [x + run % 2 for x in pv.value]
    return values


def mismatches(expected: dict[str, object], results) -> int:
    bad = 0
    for address, value in expected.items():
        reading = results[address].reading
        if reading is None:
            bad += 1
        elif isinstance(value, float):
            bad += abs(reading.value - value) > 1e-9
        elif isinstance(value, list):
            bad += len(reading.value) != len(value) or any(
                abs(a - b) > 1e-9 for a, b in zip(reading.value, value, strict=False)
            )
        else:
            bad += reading.value != value
    return bad


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pvs", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--port", type=int, default=15978)
    args = smoke.parse_args(parser, pvs=300, repeat=1)
    # libca reads the port when it loads, which is when pvs.epics_io is imported.
    os.environ["EPICS_CA_SERVER_PORT"] = str(args.port)
    from pvs.epics_io import PutRequest, epics_service

    database = sim.generate(args.pvs)
    setpoints = [pv.setpoint for pv in database.pvs]
    writable = [pv for pv in database.pvs if pv.kind in WRITABLE]
    workdir = Path(tempfile.mkdtemp(prefix="bench_epics_io_"))
    started = time.perf_counter()
    ioc = start_sim_ioc(args.pvs, args.port, workdir)
    print(
        f"IOC with {args.pvs:,} PVs ready in {time.perf_counter() - started:.1f} s; "
        f"{len(setpoints):,} setpoints, {len(writable):,} writable; median of {args.repeat}"
    )
    try:
        service = epics_service()
        elapsed, connected = timed(lambda: service.connect(setpoints, timeout=LONG_TIMEOUT))
        print(f"  connect all setpoints           {elapsed:6.2f} s  ({len(connected):,} connected)")

        reads = [timed(lambda: service.read(setpoints, timeout=LONG_TIMEOUT)) for _ in range(args.repeat)]
        failed = sum(r.error is not None for r in reads[-1][1].values())
        failures = failed
        print(f"  read all (warm)                 {statistics.median(t for t, _ in reads):6.2f} s  ({failed} failed)")

        for wait, bound in ((False, 2000), (True, 2000), (True, 50_000)):
            put_times, total_times, bad = [], [], 0
            for run in range(1, args.repeat + 1):
                expected = values_for(writable, run)
                requests = [PutRequest(address, value, wait=wait) for address, value in expected.items()]
                put_time, results = timed(partial(service.put, requests, timeout=LONG_TIMEOUT, max_outstanding=bound))
                bad += sum(not r.ok or r.completed != wait for r in results.values())
                if wait:
                    total_times.append(put_time)
                else:
                    read_time, readings = timed(partial(service.read, list(expected), timeout=LONG_TIMEOUT))
                    bad += mismatches(expected, readings)
                    total_times.append(put_time + read_time)
                put_times.append(put_time)
            failures += bad
            if wait:
                label = f"put with completion, bound {bound:,}"
                print(f"  {label:31s} {statistics.median(put_times):6.2f} s  ({bad} failed)")
            else:
                print(f"  put, no completion              {statistics.median(put_times):6.2f} s")
                print(f"  put + read-back (applied)       {statistics.median(total_times):6.2f} s  ({bad} not applied)")
        service.close()
    finally:
        stop_process(ioc)
    if failures:
        print(f"bench_epics_io: {failures} reads or puts failed", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
