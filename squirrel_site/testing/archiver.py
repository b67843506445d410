"""The simulated Archiver Appliance for tests: `manage.py run_sim_archiver` as a subprocess on a
loopback port of this test process's range, recording the session's simulated IOC.

`sim_archiver` starts it for one test, recording a few of the IOC's PVs (`SimArchiver.addresses`)
with a fabricated past of an hour (`--seed-hours`), and points settings.ARCHIVERS at it; the test
may `kill()` it (an archiver that went away). The registry is the IOC's (`sim_ioc_registry`).
`archived_site` is the browser tests' `site` whose web process asks it.
"""

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

PORTS = Ports(port_base() + 120, limit=30)
READY_TIMEOUT = 60.0
SEED_HOURS = 1.0
ARCHIVER_NAME = "sim"


class SimArchiver:
    """A `run_sim_archiver` subprocess recording `addresses` off the simulated IOC."""

    def __init__(self, workdir: Path, addresses: list[str]):
        self.addresses, self.port = addresses, PORTS.take()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path, self.ready_file = workdir / "archiver.log", workdir / "archiver.ready"
        self.process: subprocess.Popen | None = None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> None:
        """Start it and wait until it serves (fail the test with its output if it does not)."""
        args = [
            sys.executable,
            "manage.py",
            "run_sim_archiver",
            "--port",
            str(self.port),
            "--seed-hours",
            str(SEED_HOURS),
            "--ready-file",
            str(self.ready_file),
            "--pvs",
            *self.addresses,
        ]
        env = dict(os.environ, DJANGO_SETTINGS_MODULE=settings.SETTINGS_MODULE, PYTHONUNBUFFERED="1")
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(args, cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)

        def ready() -> bool:
            if self.process.poll() is not None:
                pytest.fail(f"the simulated archiver exited with {self.process.returncode}:\n{self.output()}")
            return self.ready_file.exists()

        eventually(ready, READY_TIMEOUT, interval=0.05, what="the simulated archiver ready")

    def kill(self) -> None:
        """SIGKILL it (an archiver that went away) and reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def archived_addresses(ioc) -> list[str]:
    """What the test archiver records: the setpoints of the first PVs of the IOC, a few of each
    kind the generator makes, and their readbacks."""
    chosen, kinds = [], {}
    for pv in ioc.pvs:
        if kinds.get(pv.kind, 0) < 3:
            kinds[pv.kind] = kinds.get(pv.kind, 0) + 1
            chosen += [pv.setpoint] + ([pv.readback] if pv.readback else [])
    return chosen


@pytest.fixture
def sim_archiver(sim_ioc_registry, tmp_path, settings):
    """The simulated archiver recording `archived_addresses(sim_ioc)`, and settings.ARCHIVERS on it."""
    archiver = SimArchiver(tmp_path, archived_addresses(sim_ioc_registry))
    try:
        archiver.start()
        settings.ARCHIVERS = [(ARCHIVER_NAME, archiver.url)]
        yield archiver
    finally:
        archiver.stop()


@pytest.fixture
def archived_site(site_processes, sim_ioc_registry, redis_db, tmp_path, request):
    """`site` (squirrel_site.testing.site) with the simulated archiver, which its web process asks
    (SQUIRREL_ARCHIVER_URL); yields (the site's URL, the SimArchiver)."""
    archiver = SimArchiver(tmp_path, archived_addresses(sim_ioc_registry))
    try:
        archiver.start()
        site_processes.env["SQUIRREL_ARCHIVER_URL"] = f"{ARCHIVER_NAME}={archiver.url}"
        yield request.getfixturevalue("site"), archiver
    finally:
        archiver.stop()
