"""The simulated archiver (`manage.py run_sim_archiver`) as a test's subprocess, recording off the
session's simulated IOC, and settings pointing pvs.archiver at it.

`sim_archiver` (per test): the process on a free loopback port above the fault tests' ports,
recording every address of the simulated IOC's registry (given with `--pvs`: the subprocess needs
no database), seeded an hour back; settings.ARCHIVERS names it ``sim``. Its `url`, `pause()`,
`kill()` and `output()` let a test stop it mid-request. `archived_site`: the browser tests' site
whose web process asks it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from squirrel_site.testing import eventually
from squirrel_site.testing.services import Ports
from squirrel_site.testing.workers import port_base

READY_TIMEOUT = 30.0
# Above the fault tests' ports (PORT_BASE..+50) and their private Redis (+50), below the
# benchmarks' smoke runs (+100) and the pvAccess servers (+150).
PORT_OFFSET, PORT_LIMIT = 70, 20


class SimArchiver:
    """One run_sim_archiver subprocess and what it records."""

    def __init__(
        self, workdir: Path, addresses: list[str], port: int, seed_hours: float = 1.0, env: dict | None = None
    ):
        self.port, self.addresses, self.extra_env = port, addresses, env or {}
        self.url = f"http://127.0.0.1:{port}"
        self.log_path, self.ready_file = workdir / "archiver.log", workdir / "archiver.ready"
        self.args = [
            sys.executable,
            "manage.py",
            "run_sim_archiver",
            "--port",
            str(port),
            "--seed-hours",
            str(seed_hours),
            "--ready-file",
            str(self.ready_file),
            "--pvs",
            *addresses,
        ]
        self.process: subprocess.Popen | None = None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> None:
        env = dict(os.environ, DJANGO_SETTINGS_MODULE=settings.SETTINGS_MODULE, PYTHONUNBUFFERED="1", **self.extra_env)
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                self.args, cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
            )

        def ready() -> bool:
            if self.process.poll() is not None:
                pytest.fail(f"run_sim_archiver exited with {self.process.returncode}:\n{self.output()}")
            return self.ready_file.exists()

        eventually(ready, READY_TIMEOUT, interval=0.05, what="the simulated archiver ready")

    def pause(self) -> None:
        """SIGSTOP: it accepts connections (the kernel does) and answers none."""
        self.process.send_signal(signal.SIGSTOP)

    def kill(self) -> None:
        """SIGKILL: connections in flight are reset, new ones refused."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGCONT)
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()


def recorded(addresses, timeout: float = 20.0) -> dict:
    """pvs.archiver.values_at(`addresses`, now) once every one of them is archived."""
    from datetime import UTC, datetime

    from pvs import archiver

    def all_archived():
        got = archiver.values_at(addresses, datetime.now(UTC))
        return got if all(isinstance(r, archiver.Archived) for r in got.values()) else None

    return eventually(all_archived, timeout, interval=0.2, what="the simulated archiver's first samples")


def registry_addresses(sim_ioc) -> list[str]:
    """Every address of the simulated IOC's registry (setpoints, readbacks, configs)."""
    import csv

    with sim_ioc.registry_csv.open(newline="", encoding="utf-8") as fileobj:
        rows = list(csv.DictReader(fileobj))
    return list(dict.fromkeys(a for row in rows for a in (row["Setpoint"], row["Readback"], row["Config"]) if a))


@pytest.fixture
def sim_archiver(sim_ioc, tmp_path, monkeypatch):
    """run_sim_archiver recording the simulated IOC's registry, named ``sim`` in settings.ARCHIVERS
    (serving: its first samples arrive within a second or so, :func:`recorded` waits for them)."""
    port = Ports(port_base() + PORT_OFFSET, limit=PORT_LIMIT).take()
    archiver = SimArchiver(tmp_path, registry_addresses(sim_ioc), port)
    archiver.start()
    # Set on the settings themselves, not with an override (under which SETTINGS_MODULE reads None,
    # which other fixtures check).
    monkeypatch.setattr(settings, "ARCHIVERS", [("sim", archiver.url)])
    yield archiver
    archiver.stop()


@pytest.fixture
def archived_site(site_processes, sim_ioc_registry, redis_db, tmp_path, request):
    """The browser tests' `site` (squirrel_site.testing.site) whose web process asks the simulated
    archiver (SQUIRREL_ARCHIVER_URL, named ``sim``); yields (the site's URL, the SimArchiver).
    Started before `site`, as the web process reads the variable at start."""
    archiver = SimArchiver(tmp_path, registry_addresses(sim_ioc_registry), Ports(port_base() + PORT_OFFSET).take())
    archiver.start()
    try:
        site_processes.env["SQUIRREL_ARCHIVER_URL"] = f"sim={archiver.url}"
        yield request.getfixturevalue("site"), archiver
    finally:
        archiver.stop()
