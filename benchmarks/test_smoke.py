"""Every benchmark runs at its smoke size (`--smoke`, benchmarks/smoke.py) and exits 0.

A benchmark is a script nobody runs until the next measurement, so a change that breaks one went
unnoticed until then (bench_live.py's user lost its access when roles arrived). Each runs here as
a subprocess, as documented in docs/benchmarks.md, with the production settings, on a database of
its own (dropped and created by the benchmarks: never one the tests or a developer use), the
test settings' Redis database (the benchmarks FLUSHDB it, as the tests do) and free loopback ports
from SQUIRREL_TEST_PORT_BASE + 100.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import smoke
from django.conf import settings

from squirrel_site.testing.services import Ports, port_free

BENCHMARKS = Path(__file__).resolve().parent
TIMEOUT = 120.0
# Benchmarks that start Channel Access servers take `--port` (and use the next port for their
# caRepeater), bench_pva's pvAccess server its TCP port (and the next its UDP port);
# bench_concurrency's `--port` is its web process's.
CA_PORT = {"bench_archive", "bench_epics_io", "bench_live", "bench_monitor", "bench_restore", "bench_pva"}
WEB_PORT = {"bench_concurrency"}
SCRIPTS = sorted(path.stem for path in BENCHMARKS.glob("bench_*.py") if path.stem != "bench_stats")
PORTS = Ports(int(os.environ.get("SQUIRREL_TEST_PORT_BASE", "18300")) + 100)


@pytest.fixture(scope="module")
def bench_env():
    """The environment of a benchmark process; its database is dropped after the last one."""
    db = settings.DATABASES["default"]
    name = f"{os.environ.get('SQUIRREL_DB_NAME', 'squirrel')}_bench_smoke"
    redis_url = os.environ.get("SQUIRREL_BENCH_REDIS_URL", settings.REDIS_URL)
    yield {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "squirrel_site.settings",
        "SQUIRREL_DB_NAME": name,
        "SQUIRREL_REDIS_URL": redis_url,
        "SQUIRREL_BENCH_REDIS_URL": redis_url,
        "PYTHONUNBUFFERED": "1",
    }
    dsn = {"user": db["USER"], "password": db["PASSWORD"], "host": db["HOST"], "port": db["PORT"]}
    with psycopg.connect(dbname="postgres", autocommit=True, **dsn) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def port_pair() -> int:
    """A free loopback port whose next port is free too (a CA server and its caRepeater)."""
    while True:
        port = PORTS.take()
        if port_free(port + 1) and PORTS.take() == port + 1:
            return port


@pytest.mark.bench
@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_runs_at_smoke_size(script, bench_env):
    command = [sys.executable, str(BENCHMARKS / f"{script}.py"), "--smoke"]
    if script in CA_PORT:
        command += ["--port", str(port_pair())]
    elif script in WEB_PORT:
        command += ["--port", str(PORTS.take())]
    done = subprocess.run(
        command, cwd=BENCHMARKS.parent, env=bench_env, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert done.returncode == 0, (
        f"{script} --smoke exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )


def test_sizes_given_on_the_command_line_win_over_the_smoke_sizes(monkeypatch):
    parser = argparse.ArgumentParser()
    parser.add_argument("--pvs", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    monkeypatch.setattr(sys, "argv", ["bench", "--smoke", "--repeat", "2"])
    args = smoke.parse_args(parser, pvs=300, repeat=1)
    assert (args.smoke, args.pvs, args.repeat) == (True, 300, 2)


def test_without_smoke_the_full_sizes_stay(monkeypatch):
    parser = argparse.ArgumentParser()
    parser.add_argument("--pvs", type=int, default=50_000)
    monkeypatch.setattr(sys, "argv", ["bench"])
    assert smoke.parse_args(parser, pvs=300).pvs == 50_000
