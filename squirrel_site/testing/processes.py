"""Squirrel's real processes (README "Processes") on a private PostgreSQL and Redis.

`Squirrel` starts web (daphne), worker, beat, monitor and the simulated IOC as subprocesses with
an environment pointing at the services of `squirrel_site.testing.services`, each logging to its
own file, and waits until each is ready. Tests talk to it as clients do: HTTP with an API token,
Channel Access in a separate process, and SQL for what PostgreSQL holds (the truth about jobs).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from squirrel_site.testing import channel_access, eventually, pva_client
from squirrel_site.testing.services import PrivatePostgres, PrivateRedis

BASE_DIR = Path(__file__).resolve().parent.parent.parent
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
TEMPLATE_DB = "squirrel_fault_template"
ADMIN = "admin"  # the user setup_demo creates
LOG_TAIL = 6000  # characters of each log shown when a test fails


class ManagedProcess:
    """One subprocess with its log file and a readiness check."""

    def __init__(
        self,
        name: str,
        args: list[str],
        env: dict,
        log_path: Path,
        ready: Callable[[], bool],
        before_start: Callable[[], None] | None = None,
    ):
        self.name, self.args, self.env, self.log_path, self.ready = name, args, env, log_path, ready
        self.before_start = before_start  # e.g. remove the previous run's ready file
        self.process: subprocess.Popen | None = None
        self._started_at = 0  # log offset of the last start

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def recent(self) -> str:
        """The log since the last start (a restarted process's readiness is judged on it alone)."""
        return self.output()[self._started_at :]

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        assert not self.alive(), f"{self.name} is already running"
        if self.before_start is not None:
            self.before_start()
        self._started_at = len(self.output())
        with self.log_path.open("a") as log:
            log.write(f"---- starting {self.name}: {' '.join(self.args)}\n")
            log.flush()
            self.process = subprocess.Popen(
                self.args, cwd=BASE_DIR, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Wait until the readiness check passes; fail with the log if the process exits first."""

        def ready() -> bool:
            if not self.alive():
                raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.output()[-LOG_TAIL:]}")
            return self.ready()

        try:
            eventually(ready, timeout, what=f"{self.name} ready")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n---- {self.name} log:\n{self.output()[-LOG_TAIL:]}") from None

    def signal(self, signum: int) -> None:
        if self.alive():
            self.process.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL, as the OOM killer or a crash would."""
        if self.alive():
            self.process.kill()
        if self.process is not None:
            self.process.wait(STOP_TIMEOUT)

    def stop(self) -> int | None:
        """SIGTERM (a clean stop), then SIGKILL after STOP_TIMEOUT; returns the exit code."""
        if self.process is None:
            return None
        self.signal(signal.SIGTERM)
        try:
            return self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.process.returncode


def process_env(postgres: PrivatePostgres, redis: PrivateRedis, db_name: str, ca_port: int) -> dict:
    """The environment of every process: production settings on the private services."""
    # Nothing of the test run's own settings; no NOTIFY_SOCKET either (a test sets its own).
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SQUIRREL_", "EPICS_", "NOTIFY_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="squirrel_site.settings",
        PYTHONUNBUFFERED="1",
        PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        SQUIRREL_SECRET_KEY="fault-test-secret-key",
        SQUIRREL_ALLOWED_HOSTS="127.0.0.1,localhost",
        SQUIRREL_DB_HOST="127.0.0.1",
        SQUIRREL_DB_PORT=str(postgres.port),
        SQUIRREL_DB_NAME=db_name,
        SQUIRREL_DB_USER="postgres",
        SQUIRREL_REDIS_URL=redis.url,
        SQUIRREL_CELERY_BROKER_URL=redis.url,
        EPICS_CA_SERVER_PORT=str(ca_port),
        EPICS_CA_AUTO_ADDR_LIST="NO",
        EPICS_CA_ADDR_LIST="127.0.0.1",
        EPICS_CAS_INTF_ADDR_LIST="127.0.0.1",
        EPICS_CAS_AUTO_BEACON_ADDR_LIST="NO",
        EPICS_CAS_BEACON_ADDR_LIST="127.0.0.1",
    )
    return env


def manage(env: dict, *args: str, timeout: float = 300.0) -> str:
    """Run `manage.py args` in a subprocess with `env`; its stdout (fails with its output)."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def prepare_template(postgres: PrivatePostgres, redis: PrivateRedis, pvs: int) -> str:
    """Migrate a template database with the demo registry of `pvs` PVs and user; the user's API token.

    Each test's database is a copy of it (CREATE DATABASE ... TEMPLATE: a fraction of a second
    where migrating takes many).
    """
    postgres.create_database(TEMPLATE_DB)
    env = process_env(postgres, redis, TEMPLATE_DB, ca_port=0)  # no Channel Access here
    manage(env, "migrate", "--noinput")
    manage(env, "setup_demo", "--pvs", str(pvs))
    return manage(env, "create_api_token", ADMIN).strip()


def simulated_ioc(workdir: Path, env: dict, pvs: int) -> ManagedProcess:
    """The simulated IOC serving the demo registry of `pvs` PVs on env's EPICS_CA_SERVER_PORT."""
    ready_file = workdir / "ioc.ready"
    args = [sys.executable, "manage.py", "run_sim_ioc", "--pvs", str(pvs), "--port", env["EPICS_CA_SERVER_PORT"]]
    return ManagedProcess(
        "ioc",
        [*args, "--ready-file", str(ready_file)],
        env,
        workdir / "ioc.log",
        ready_file.exists,
        before_start=lambda: ready_file.unlink(missing_ok=True),
    )


def simulated_pva(workdir: Path, env: dict, pvs: int, port: int, put_delay: float = 0.0) -> ManagedProcess:
    """The simulated pvAccess server (pvs.sim_pva, `pvs` PVs) on loopback TCP `port`, UDP `port` + 1;
    puts complete `put_delay` s after they are applied (run_sim_pva --put-delay)."""
    ready_file = workdir / "pva.ready"
    args = [sys.executable, "manage.py", "run_sim_pva", "--pvs", str(pvs), "--port", str(port)]
    args += ["--put-delay", str(put_delay), "--ready-file", str(ready_file)]
    return ManagedProcess(
        "pva",
        args,
        env,
        workdir / "pva.log",
        ready_file.exists,
        before_start=lambda: ready_file.unlink(missing_ok=True),
    )


class Squirrel:
    """The processes of one test on its own database; start what the test needs with start().

    `ioc` is the session's simulated IOC (shared; a test may kill it, the fixture restarts it).
    A test that needs pvAccess starts a simulated pvAccess server of its own with :meth:`start_pva`
    before the other processes (they find it, and only it).
    """

    KINDS = ("web", "worker", "beat", "monitor")

    def __init__(
        self,
        workdir: Path,
        postgres: PrivatePostgres,
        redis: PrivateRedis,
        ioc: ManagedProcess,
        db_name: str,
        web_port: int,
        token: str,
        ports=None,
    ):
        self.workdir, self.postgres, self.redis, self.ioc = workdir, postgres, redis, ioc
        self.db_name, self.web_port, self.token = db_name, web_port, token
        self.env = process_env(postgres, redis, db_name, int(ioc.env["EPICS_CA_SERVER_PORT"]))
        self.url = f"http://127.0.0.1:{web_port}"
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Token {token}"
        self.processes: dict[str, ManagedProcess] = {}
        self.ports = ports  # free loopback ports for servers a test starts (start_pva)
        self.pva_port: int | None = None

    # Processes --------------------------------------------------------------------------------

    def _make(self, name: str) -> ManagedProcess:
        kind, python, log = name.split("-")[0], sys.executable, self.workdir / f"{name}.log"
        if kind == "web":
            args = [python, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.web_port)]
            args += ["squirrel_site.asgi:application"]
            return ManagedProcess(name, args, self.env, log, lambda: self.get("/api/v1/health/").status_code > 0)
        if kind == "worker":
            # As the Procfile runs it (mingle and gossip included: they talk to the broker too).
            args = [python, "-m", "celery", "-A", "squirrel_site", "worker", "--pool", "threads", "--concurrency", "2"]
            args += ["--loglevel", "INFO", "--hostname", f"{name}@%h"]
            process = ManagedProcess(name, args, self.env, log, lambda: " ready." in process.recent())
            return process
        if kind == "beat":
            args = [python, "-m", "celery", "-A", "squirrel_site", "beat", "--loglevel", "INFO"]
            process = ManagedProcess(name, args, self.env, log, lambda: "beat: Starting..." in process.recent())
            return process
        if kind == "monitor":
            # Ready when it runs and its shard has a leader with every value in Redis (itself or another).
            args = [python, "manage.py", "monitor_pvs"]
            process = ManagedProcess(
                name,
                args,
                self.env,
                log,
                lambda: " starting" in process.recent() and self.monitor_heartbeat().get("synced"),
            )
            return process
        raise ValueError(f"unknown process {name!r}: one of {self.KINDS}, optionally with a suffix (monitor-2)")

    def start(self, *names: str) -> None:
        """Start these processes (all of KINDS if none are named) together; wait until all are ready.

        A name is a kind, optionally with a suffix for a second one of it: "monitor-standby".
        """
        started = [self.processes.setdefault(name, self._make(name)) for name in names or self.KINDS]
        for process in started:
            process.start()
        with ThreadPoolExecutor(len(started)) as pool:
            for future in [pool.submit(process.wait_ready) for process in started]:
                future.result()

    def start_pva(self, pvs: int = 100, put_delay: float = 0.0) -> ManagedProcess:
        """Start the simulated pvAccess server ("pva": pvs.sim_pva's first `pvs` PVs) on two free
        loopback ports of this test, and point every process started after it at it alone."""
        while True:
            port = self.ports.take()
            if self.ports.take() == port + 1:
                break
        self.pva_port = port
        self.env.update(
            EPICS_PVA_AUTO_ADDR_LIST="NO",
            EPICS_PVA_ADDR_LIST=f"127.0.0.1:{port + 1}",
            EPICS_PVAS_INTF_ADDR_LIST="127.0.0.1",
        )
        process = simulated_pva(self.workdir, self.env, pvs, port, put_delay)
        self.processes["pva"] = process
        process.start()
        process.wait_ready()
        return process

    def pvget(self, names: list[str], timeout: float = 5.0) -> dict:
        """{name: the value's dict, or None if no server answered within `timeout`} read by p4p's
        own threaded client in a fresh process (independent of Squirrel), from this test's server."""
        return pva_client.pvget(self.env["EPICS_PVA_ADDR_LIST"], names, timeout)

    def pvput(self, values: dict) -> None:
        """Put {name: {field: value}} with completion through p4p's own client in a fresh process."""
        pva_client.pvput(self.env["EPICS_PVA_ADDR_LIST"], values)

    def __getitem__(self, name: str) -> ManagedProcess:
        return self.processes[name]

    def dead(self) -> list[str]:
        """The started processes that are no longer running."""
        return [name for name, process in self.processes.items() if not process.alive()]

    def stop(self) -> None:
        """Stop every process cleanly, in parallel."""
        with ThreadPoolExecutor(max(1, len(self.processes))) as pool:
            list(pool.map(ManagedProcess.stop, self.processes.values()))

    def logs(self) -> str:
        """The tail of every log (the services' included), for a failed test's report."""
        parts = [(name, process.output()) for name, process in self.processes.items()]
        parts += [("ioc", self.ioc.output()), ("redis", self.redis.output()), ("postgres", self.postgres.output())]
        return "\n".join(f"---- {name} (last {LOG_TAIL} characters)\n{text[-LOG_TAIL:]}" for name, text in parts)

    # Clients ----------------------------------------------------------------------------------

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.http.get(self.url + path, timeout=kwargs.pop("timeout", 10), **kwargs)

    def post(self, path: str, payload: dict | None = None, **kwargs) -> requests.Response:
        return self.http.post(self.url + path, json=payload or {}, timeout=kwargs.pop("timeout", 10), **kwargs)

    def manage(self, *args: str) -> str:
        """Run `manage.py args` on this test's database and services; its stdout."""
        return manage(self.env, *args)

    def schedule_every(self, seconds: int, task: str = "snapshots.requeue_lost_jobs") -> None:
        """Have beat send `task` every `seconds` (a periodic task in the database; start beat after)."""
        self.manage(
            "shell",
            "-c",
            (
                "from django_celery_beat.models import IntervalSchedule, PeriodicTask\n"
                f"every, _ = IntervalSchedule.objects.get_or_create(every={seconds}, period='seconds')\n"
                f"PeriodicTask.objects.create(name='fault test: {task}', task='{task}', interval=every)"
            ),
        )

    def sql(self, query: str, *params) -> list[tuple]:
        """Rows of `query` on this test's database, on a connection of its own."""
        with self.postgres.connect(self.db_name) as conn:
            return conn.execute(query, params).fetchall()

    def job(self, job_id: int) -> dict:
        """A job as PostgreSQL holds it: status, message, error, result_id, retry_count."""
        fields = ("status", "message", "error", "result_id", "retry_count")
        rows = self.sql(f"SELECT {', '.join(fields)} FROM jobs_job WHERE id = %s", job_id)
        return dict(zip(fields, rows[0], strict=True)) if rows else {}

    def count(self, table: str) -> int:
        """Rows in `table` of this test's database (e.g. jobs_job, squirrel_site_auditentry)."""
        return self.sql(f"SELECT count(*) FROM {table}")[0][0]

    def wait_for_job(self, job_id: int, timeout: float = 60.0) -> dict:
        """The job once it has ended (succeeded, failed or expired), from PostgreSQL."""

        def ended() -> dict | None:
            job = self.job(job_id)
            return job if job["status"] in ("succeeded", "failed", "expired") else None

        return eventually(ended, timeout, what=f"job {job_id} ended")

    def take_snapshot(self, addresses: list[str], title: str = "fault test") -> int:
        """Ask the API for a direct snapshot of `addresses`; the job's id (the request must be accepted)."""
        response = self.post("/api/v1/snapshots/", {"title": title, "mode": "direct", "selection": {"pv": addresses}})
        assert response.status_code == 202, response.text
        return response.json()["id"]

    def monitor_heartbeat(self, shard: str = "0of1") -> dict:
        """The monitor's latest heartbeat for `shard`, straight from Redis ({} if there is none)."""
        raw = self.redis.client().get(f"squirrel:monitor:{shard}:heartbeat")
        return json.loads(raw) if raw else {}

    def addresses(self, limit: int = 20) -> list[str]:
        """Setpoint addresses of the registry, in id order."""
        return [row[0] for row in self.sql("SELECT setpoint_address FROM pvs_pv ORDER BY id LIMIT %s", limit)]

    def preview(self, snapshot_id: int, addresses: list[str]) -> dict:
        """A restore preview of `addresses` to snapshot `snapshot_id`, made at once from the monitor's
        cache (201) or by a worker (202, then its job); the preview as the API shows it."""
        response = self.post("/api/v1/restore-previews/", {"snapshot": snapshot_id, "selection": {"pv": addresses}})
        assert response.status_code in (201, 202), response.text
        if response.status_code == 202:
            job = self.wait_for_job(response.json()["id"])
            assert job["status"] == "succeeded", job
            return self.get(f"/api/v1/restore-previews/{job['result_id']}/").json()
        return response.json()

    def execute(self, preview_id: int) -> requests.Response:
        """Confirm a preview, as the operator does (202 with the restore's job, when accepted)."""
        return self.post(f"/api/v1/restore-previews/{preview_id}/execute/")

    def caget(self, addresses: list[str]) -> dict:
        """Read `addresses` from the IOC over Channel Access in a fresh process (independent of Squirrel)."""
        return channel_access.caget(self.env, addresses)

    def caput(self, values: dict) -> None:
        """Write {address: value} to the IOC from a fresh process (as another client would)."""
        channel_access.caput(self.env, values)

    def watch(self, addresses: list[str]) -> channel_access.CaWatch:
        """Subscribe to `addresses` from a separate process; stop() or changes() tells what the IOC posted."""
        return channel_access.CaWatch(self.env, addresses)

    def last_processed(self, addresses: list[str]) -> dict[str, tuple]:
        """{address: (value, IOC timestamp of its last processing)}, read from a separate process."""
        return channel_access.last_processed(self.env, addresses)
