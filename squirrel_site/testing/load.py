"""A daphne web process under a burst of concurrent requests, watched from outside: what each
client was answered, how many database connections the process held (pg_stat_activity, by the
application name it connects with), whether another process could still connect meanwhile, and
the process's resident memory. Used by test_load.py and benchmarks/bench_concurrency.py.
Loopback only; every client sends a fixed number of requests.
"""

from __future__ import annotations

import http.client
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from squirrel_site.testing import eventually, terminate

START_TIMEOUT = 60.0
REQUEST_TIMEOUT = 60.0


def database_dsn(db: dict) -> str:
    """A libpq connection string for a Django DATABASES entry."""
    return make_conninfo(host=db["HOST"], port=db["PORT"], user=db["USER"], password=db["PASSWORD"], dbname=db["NAME"])


def rss_mb(pid: int) -> float:
    """Resident memory of a process (VmRSS), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class WebProcess:
    """`daphne squirrel_site.asgi:application` on 127.0.0.1:`port` with the production settings
    (squirrel_site.settings: the pool, admission control), connecting to PostgreSQL as
    `app_name` so that its connections can be counted. `env` overrides the environment;
    `backlog` is the listening socket's (daphne's own is 50)."""

    def __init__(
        self, port: int, app_name: str, log_path: Path, cwd: Path, env: dict[str, str], backlog: int | None = None
    ):
        self.port, self.app_name, self.log_path = port, app_name, log_path
        self.url = f"http://127.0.0.1:{port}"
        full_env = dict(os.environ)
        # The test settings are not what a web process runs; the pool's default comes from asgi.py.
        for name in ("DJANGO_SETTINGS_MODULE", "SQUIRREL_DB_POOL"):
            full_env.pop(name, None)
        full_env.update(
            SQUIRREL_SECRET_KEY="load-test-only", SQUIRREL_DEBUG="0", PGAPPNAME=app_name, PYTHONUNBUFFERED="1", **env
        )
        listen = ["-b", "127.0.0.1", "-p", str(port)]
        if backlog is not None:
            listen = ["-e", f"tcp:{port}:interface=127.0.0.1:backlog={backlog}"]
        with log_path.open("a") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "squirrel_site.web_server", *listen, "squirrel_site.asgi:application"],
                cwd=cwd,
                env=full_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

        def answers() -> bool:
            if self.process.poll() is not None:
                pytest.fail(f"daphne exited:\n{self.log()}")
            return self._answers()

        try:
            eventually(answers, START_TIMEOUT, what="daphne answering")
        except AssertionError:
            pytest.fail(f"daphne did not answer:\n{self.log()}")

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/health/", timeout=2):
                return True
        except urllib.error.HTTPError:
            return True  # any HTTP answer (503 included) means it serves
        except OSError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def rss_mb(self) -> float:
        return rss_mb(self.process.pid)

    def stop(self) -> None:
        terminate(self.process)


@dataclass
class Answer:
    url: str
    status: int  # 0: no answer (connection refused or reset, timeout)
    retry_after: str | None
    seconds: float
    error: str = ""


def get(url: str, headers: dict[str, str]) -> Answer:
    """One GET on a connection of its own."""
    parsed = urllib.parse.urlsplit(url)
    start = time.perf_counter()
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=REQUEST_TIMEOUT)
    try:
        connection.request("GET", f"{parsed.path}?{parsed.query}" if parsed.query else parsed.path, headers=headers)
        response = connection.getresponse()
        response.read()
        return Answer(url, response.status, response.getheader("Retry-After"), time.perf_counter() - start)
    except OSError as exc:
        return Answer(url, 0, None, time.perf_counter() - start, type(exc).__name__)
    finally:
        connection.close()


def burst(requests: list[tuple[str, dict[str, str]]], per_client: int = 1) -> list[Answer]:
    """One client thread per (url, headers), all released at once, each sending `per_client`
    requests one after the other; every answer, in no particular order."""
    answers: list[Answer] = []
    lock = threading.Lock()
    gate = threading.Barrier(len(requests))

    def client(url: str, headers: dict[str, str]) -> None:
        gate.wait()
        for _ in range(per_client):
            answer = get(url, headers)
            with lock:
                answers.append(answer)

    threads = [threading.Thread(target=client, args=request) for request in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


@dataclass
class ConnectionWatch:
    """Samples, every `interval` s on a connection of its own, how many connections `app_name`
    holds, and once in a while opens a new connection and runs a query, as another process would
    (beat, a worker): `most` is the largest count seen, `probes` the fresh connections' outcomes."""

    dsn: str
    app_name: str
    interval: float = 0.01
    probe_every: float = 0.25
    most: int = 0
    samples: int = 0
    probes: list[tuple[bool, float]] = field(default_factory=list)

    def __post_init__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        next_probe = time.monotonic()
        with psycopg.connect(self.dsn, autocommit=True, application_name="squirrel-load-watch") as watch:
            while not self._stop.is_set():
                count = watch.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [self.app_name]
                ).fetchone()[0]
                self.most, self.samples = max(self.most, count), self.samples + 1
                if time.monotonic() >= next_probe:
                    next_probe = time.monotonic() + self.probe_every
                    self.probes.append(self._probe())
                self._stop.wait(self.interval)

    def _probe(self) -> tuple[bool, float]:
        start = time.perf_counter()
        try:
            with psycopg.connect(self.dsn, connect_timeout=5, application_name="squirrel-load-probe") as other:
                other.execute("SELECT count(*) FROM pg_class").fetchone()
        except psycopg.Error:
            return False, time.perf_counter() - start
        return True, time.perf_counter() - start


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def summary(answers: list[Answer]) -> dict:
    """Counts by status and the latency's median and 95th percentile, in ms."""
    counts: dict[int, int] = {}
    for answer in answers:
        counts[answer.status] = counts.get(answer.status, 0) + 1
    seconds = [answer.seconds for answer in answers]
    return {
        "statuses": dict(sorted(counts.items())),
        "median_ms": round(statistics.median(seconds) * 1000, 1),
        "p95_ms": round(percentile(seconds, 0.95) * 1000, 1),
    }
