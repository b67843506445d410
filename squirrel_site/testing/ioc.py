"""The simulated IOC in the registry, Celery worker subprocesses, and independent Channel Access
reads and writes (plain pyepics in a subprocess, sharing nothing with the code under test)."""

import json
import os
import signal
import subprocess
import sys
import tempfile

import pytest
from django.conf import settings
from django.db import connection

from pvs.importers import import_pvs
from squirrel_site.testing import eventually

# A test's Celery worker: the production pool, two threads, no start-up handshakes with other workers.
WORKER_ARGS = [
    "-m",
    "celery",
    "-A",
    "squirrel_site",
    "worker",
    "--pool",
    "threads",
    "--concurrency",
    "2",
    "--loglevel",
    "INFO",
    "--without-mingle",
    "--without-gossip",
]


class Worker:
    """A `celery worker --pool threads` subprocess on the test database and broker."""

    def __init__(self, log_path):
        self.log_path = log_path
        env = dict(
            os.environ,
            DJANGO_SETTINGS_MODULE=settings.SETTINGS_MODULE,
            SQUIRREL_DB_NAME=connection.settings_dict["NAME"],
            PYTHONUNBUFFERED="1",
            PATH=f"{os.path.dirname(sys.executable)}:{os.environ.get('PATH', '')}",
        )
        with open(log_path, "a") as log:
            self.process = subprocess.Popen(
                [sys.executable, *WORKER_ARGS],
                cwd=settings.BASE_DIR,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

        def ready() -> bool:
            if self.process.poll() is not None:
                pytest.fail(f"worker exited:\n{self.output()}")
            return "ready." in self.output()

        try:
            eventually(ready, 30, what="the worker ready")
        except AssertionError:
            pytest.fail(f"worker not ready:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def sim_ioc_registry(sim_ioc, transactional_db):
    report = import_pvs("registry.csv", sim_ioc.registry_csv.read_bytes(), dry_run=False)
    assert report.ok
    return sim_ioc


def ca(script: str, **values):
    """Run `script` with pyepics in a fresh process; it prints JSON, which is returned."""
    code = f"import epics, json, sys\nvalues = json.loads(sys.argv[1])\n{script}"
    env = dict(os.environ)
    # Output to files, not pipes: the first Channel Access client on a port starts the CA repeater,
    # which inherits its output and outlives it, so reading pipes to their end waits for the repeater.
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        result = subprocess.run(
            [sys.executable, "-c", code, json.dumps(values)], env=env, stdout=out, stderr=err, text=True, timeout=60
        )
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    assert result.returncode == 0, stderr
    return json.loads(stdout.strip().splitlines()[-1])


def caput_many(values: dict) -> None:
    ca(
        "for a, v in values['pvs'].items():\n    assert epics.caput(a, v, wait=True, timeout=5) == 1, a\nprint('{}')",
        pvs=values,
    )


def caget_many(addresses) -> dict:
    return ca(
        "print(json.dumps({a: (lambda v: v.tolist() if hasattr(v, 'tolist') else v)("
        "epics.caget(a, use_monitor=False, timeout=5)) for a in values['pvs']}))",
        pvs=list(addresses),
    )
