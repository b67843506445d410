"""Process helpers for bench_monitor.py: start and stop children, read their CPU and memory, wait for
their files and log lines, and notice when another user of the benchmark's Redis DB disturbs a case."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


def spawn(cmd: list[str], env: dict, log: Path | None = None, pipe_stderr: bool = False) -> subprocess.Popen:
    out = open(log, "ab") if log else subprocess.DEVNULL
    try:
        return subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.PIPE if pipe_stderr else subprocess.STDOUT if log else subprocess.DEVNULL,
        )
    finally:
        if log:
            out.close()


def stop(proc: subprocess.Popen | None, timeout: float = 10.0) -> None:
    """SIGTERM the process we started (by its PID), SIGKILL it if it does not go in time."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    fields = data[data.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class CpuMeter:
    """% of one core used by each process between start() and stop()."""

    def __init__(self, pids: dict[str, int]):
        self.pids = {name: pid for name, pid in pids.items() if pid}

    def start(self):
        self.t0 = time.monotonic()
        self.c0 = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self.s0 = system_busy_seconds()
        return self

    def stop(self) -> dict[str, float]:
        elapsed = time.monotonic() - self.t0
        cpu = {name: 100 * (cpu_seconds(pid) - self.c0[name]) / elapsed for name, pid in self.pids.items()}
        # Everything else on the machine (this script, other users' jobs, the kernel).
        cpu["other"] = max(0.0, 100 * (system_busy_seconds() - self.s0) / elapsed - sum(cpu.values()))
        return cpu


def system_busy_seconds() -> float:
    """Non-idle CPU time of the whole machine (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / CLK_TCK


def wait_for_file(path: Path, proc: subprocess.Popen, timeout: float, what: str) -> float:
    start = time.monotonic()
    while not path.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode}")
        if time.monotonic() - start > timeout:
            raise RuntimeError(f"{what} not ready after {timeout:.0f} s")
        time.sleep(0.05)
    return time.monotonic() - start


class Interference(RuntimeError):
    """Someone else flushed our Redis DB during a case (the monitor lost its lease)."""


SENTINEL_KEY = "bench_monitor:sentinel"


def retried(function, what: str, attempts: int = 3):
    for _ in range(attempts):
        try:
            return function()
        except Interference as exc:
            print(f"  {what}: {exc}; running it again", flush=True)
    raise RuntimeError(f"{what}: disturbed {attempts} times by another user of the Redis DB")


def check_undisturbed(client, reader) -> None:
    if not client.exists(SENTINEL_KEY) or reader.first("stepping down"):
        raise Interference("the Redis DB was flushed by someone else (the monitor lost its lease)")


class LineReader(threading.Thread):
    """Collects a child's stderr lines with the time each one arrived (for its log milestones)."""

    def __init__(self, stream, echo: Path):
        super().__init__(daemon=True)
        self.stream, self.echo, self.lines = stream, echo, []

    def run(self):
        with open(self.echo, "ab") as log:
            for raw in self.stream:
                self.lines.append((time.time(), raw.decode(errors="replace")))
                log.write(raw)

    def first(self, text: str) -> float | None:
        return next((t for t, line in self.lines if text in line), None)
