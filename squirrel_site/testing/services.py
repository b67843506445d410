"""A private PostgreSQL cluster and a private Redis server that a fault test may stop or kill.

Both listen on 127.0.0.1 on ports of their own, keep their files under a temporary directory and
are torn down with it. PostgreSQL refuses to run as root, so as root the cluster belongs to the
`postgres` system user (as in .ci/lib.sh).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg
import redis

from squirrel_site.testing import eventually

START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0


def port_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:`port` over TCP, and its UDP port is free too (CA uses both)."""
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


class Ports:
    """Hands out free loopback ports from `base` upwards, never the same one twice."""

    def __init__(self, base: int, limit: int = 100):
        self.next, self.end = base, base + limit

    def take(self) -> int:
        while self.next < self.end:
            port, self.next = self.next, self.next + 1
            if port_free(port):
                return port
        raise RuntimeError(f"no free port below {self.end}")


def pg_bindir() -> Path:
    """The newest installed PostgreSQL's bin directory (Debian keeps several side by side)."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if candidates:
        return candidates[-1].parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    return Path(initdb).parent


class PrivatePostgres:
    """A PostgreSQL cluster of its own: start, stop (fast shutdown), kill -9, restart."""

    def __init__(self, port: int):
        # Its own directory in /tmp: pytest's are private to root, which the postgres user cannot enter.
        self.workdir = Path(tempfile.mkdtemp(prefix="squirrel-postgres-"))
        self.port, self.data = port, self.workdir / "pgdata"
        self.log_path = self.workdir / "postgres.log"
        self.bin = pg_bindir()
        self._as_owner: list[str] = []
        if os.geteuid() == 0:
            self._as_owner = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.workdir, "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync")

    def _run(self, tool: str, *args: str) -> None:
        command = [*self._as_owner, str(self.bin / tool), *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} failed:\n{result.stdout}{result.stderr}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def connect(self, dbname: str = "postgres") -> psycopg.Connection:
        """A new autocommit connection to `dbname`."""
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname=dbname, autocommit=True, connect_timeout=3
        )

    @property
    def running(self) -> bool:
        try:
            self.connect().close()
        except psycopg.OperationalError:
            return False
        return True

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        # Small: several clusters share a test machine. fsync off: the tests kill it, not the power.
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.data} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c shared_buffers=32MB -c max_connections=100"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-o", options, "start")
        eventually(lambda: self.running, START_TIMEOUT, what=f"PostgreSQL on port {self.port}")

    def stop(self) -> None:
        """Fast shutdown: clients are disconnected, the server stops cleanly."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-t", str(int(STOP_TIMEOUT)), "stop")

    def kill(self) -> None:
        """SIGKILL the postmaster (its children exit as they notice); the next start recovers."""
        pid_file = self.data / "postmaster.pid"
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
        eventually(lambda: not self.running, STOP_TIMEOUT, what="PostgreSQL gone")

    def restart(self) -> None:
        if self.running:
            self.stop()
        self.start()

    def create_database(self, name: str, template: str | None = None) -> None:
        """Create (or re-create) database `name`, as a copy of `template` if given."""
        with self.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))

    def destroy(self) -> None:
        """Stop the server however it is and delete its files (at the end of the session)."""
        if (self.data / "postmaster.pid").exists():
            try:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
            except RuntimeError:
                pass  # already stopped
        shutil.rmtree(self.workdir, ignore_errors=True)


class PrivateRedis:
    """A Redis server of its own, without persistence: kill it, and it restarts empty."""

    def __init__(self, workdir: Path, port: int):
        self.port, self.workdir = port, workdir
        self.log_path = workdir / "redis.log"
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen | None = None
        self.databases = 16

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_connect_timeout=2, socket_timeout=5)

    @property
    def running(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    def start(self, databases: int = 16) -> None:
        """Start an empty server (with `databases` numbered databases) and wait until it answers PING."""
        assert self.process is None or self.process.poll() is not None, "Redis is already running"
        self.databases = databases
        with self.log_path.open("a") as log:
            args = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.workdir)]
            # No persistence: a restart is an empty Redis, the worst case for messages and caches.
            args += ["--save", "", "--appendonly", "no", "--databases", str(databases)]
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        eventually(lambda: self.running, START_TIMEOUT, what=f"Redis on port {self.port}")

    def kill(self) -> None:
        """SIGKILL the server: every key is lost, every client's connection drops."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT)

    def restart(self) -> None:
        """Kill and start again, empty."""
        self.kill()
        self.start(self.databases)

    def destroy(self) -> None:
        """Kill the server and remove its directory."""
        self.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)
