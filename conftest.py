"""Project-wide pytest fixtures: users, an empty Redis test database, a broker that refuses
connections, the simulated IOC, and the fault tests' processes (squirrel_site.testing)."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from monitor import live
from pvs import sim
from squirrel_site.testing import eventually

# The shared fixtures (squirrel_site.testing): a parallel run's private Redis (parallel); the fault
# tests' private PostgreSQL and Redis and real processes (fault_services, squirrel); the simulated IOC
# in the registry (sim_ioc_registry); the simulated pvAccess server (pva_server); the whole system for
# the browser (site, browser_page, put_on_ioc); snapshots and live values (make_snapshot, make_pvs,
# live_values); the simulated archiver recording off the IOC (sim_archiver).
pytest_plugins = [
    "squirrel_site.testing.parallel",
    "squirrel_site.testing.fixtures",
    "squirrel_site.testing.ioc",
    "squirrel_site.testing.pva",
    "squirrel_site.testing.site",
    "squirrel_site.testing.snapshots",
    "squirrel_site.testing.archiver",
]

SIM_IOC_PVS = 300
SIM_IOC_CHANGE_RATE_HZ = 2.0
SIM_IOC_READY_TIMEOUT = 60.0
SIM_IOC_STOP_TIMEOUT = 10.0


@pytest.fixture
def admin_user(django_user_model):
    """A superuser, as the admin pages need."""
    return django_user_model.objects.create_superuser("admin", "admin@example.org", "admin-pass")


@pytest.fixture
def make_user(django_user_model):
    """Make a user holding one role (a group from squirrel_site.roles), or none: make_user("viewer")."""
    from django.contrib.auth.models import Group

    def make(role: str | None, username: str | None = None):
        user = django_user_model.objects.create_user(username or f"{role or 'nobody'}-user", password="pw")
        if role is not None:
            user.groups.add(Group.objects.get(name=role))
        return user

    return make


@pytest.fixture
def viewer(make_user):
    """A user in the viewer group: reads everything, changes nothing."""
    return make_user("viewer")


@pytest.fixture
def editor(make_user):
    """A user in the editor group: curates PVs, tags and tag groups."""
    return make_user("editor")


@pytest.fixture
def operator_user(make_user):
    """A user in the operator group: takes snapshots and restores."""
    return make_user("operator")


@pytest.fixture
def admin_role_user(make_user):
    """A user in the admin group (not a superuser): everything, golden tags included."""
    return make_user("admin")


@pytest.fixture
def broker_down(settings, monkeypatch):
    """The Celery broker at a closed port on this host: every connection to it is refused."""
    import socket

    from squirrel_site.celery import app

    with socket.socket() as probe:  # a port that was free a moment ago, and nothing listens on
        probe.bind(("127.0.0.1", 0))
        url = f"redis://127.0.0.1:{probe.getsockname()[1]}/0"
    # Celery's configuration reads Django's settings: change it first, or it would keep this URL.
    monkeypatch.setitem(app.conf, "broker_url", url)
    settings.CELERY_BROKER_URL = url
    return url


@pytest.fixture
def redis_db():
    """The live-value Redis client on the test database, flushed before and after the test."""
    # FLUSHDB on a real instance: refuse anything but the test settings' database.
    assert settings.SETTINGS_MODULE.endswith("settings_test"), settings.SETTINGS_MODULE
    client = live.redis_client()
    client.flushdb()
    yield client
    client.flushdb()


class SimIOC:
    """A `run_sim_ioc` subprocess on the test CA port, and the registry it serves.

    `pvs` are the generator's PVs (pvs.sim.SimPV, with their kind and initial value), so tests can
    pick a PV of each kind; `registry_csv` is their registry. The IOC also serves the demo's PVs in
    alarm (`alarm_pvs`, sim.ALARM and sim.OFFLINE), outside that registry: a test that wants them
    registers them. Values written by one test stay for the next: `restart()` gives a fresh IOC.
    """

    def __init__(self, workdir: Path, count: int = SIM_IOC_PVS, prefix: str = "SIM:", seed: int = 0):
        # The settings module set the loopback EPICS_* defaults and the test CA port in os.environ.
        self.port = int(os.environ["EPICS_CA_SERVER_PORT"])
        self.prefix, self.seed, self.change_rate = prefix, seed, SIM_IOC_CHANGE_RATE_HZ
        self.database = sim.generate(count, prefix, seed, self.change_rate, alarms=True)
        self.pvs = [pv for pv in self.database.pvs if pv.kind not in (sim.ALARM, sim.OFFLINE)]
        self.alarm_pvs = [pv for pv in self.database.pvs if pv.kind in (sim.ALARM, sim.OFFLINE)]
        self.registry_csv = workdir / "registry.csv"
        with self.registry_csv.open("w", newline="", encoding="utf-8") as fileobj:
            sim.write_registry_csv(self.pvs, fileobj)
        self.log_path = workdir / "ioc.log"
        self.ready_file = workdir / "ready"
        self.args = [
            sys.executable,
            "manage.py",
            "run_sim_ioc",
            "--pvs",
            str(count),
            "--prefix",
            prefix,
            "--seed",
            str(seed),
            "--change-rate",
            str(self.change_rate),
            "--alarms",
            "--port",
            str(self.port),
            "--ready-file",
            str(self.ready_file),
        ]
        self.process: subprocess.Popen | None = None

    def of_kind(self, kind: str) -> list[sim.SimPV]:
        """The served PVs of one kind (pvs.sim.PAIR, READONLY, ...)."""
        return self.database.of_kind(kind)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def output(self) -> str:
        """Everything the IOC process printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> None:
        """Start the IOC and wait until it serves; fail the test with its output if it does not."""
        assert not self.running, "the simulated IOC is already running"
        self.ready_file.unlink(missing_ok=True)
        env = dict(os.environ, DJANGO_SETTINGS_MODULE=settings.SETTINGS_MODULE, PYTHONUNBUFFERED="1")
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                self.args, cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
            )

        def ready() -> bool:
            if self.process.poll() is not None:
                pytest.fail(f"simulated IOC exited with {self.process.returncode}:\n{self.output()}")
            return self.ready_file.exists()

        try:
            eventually(ready, SIM_IOC_READY_TIMEOUT, interval=0.05, what="the simulated IOC ready")
        except AssertionError:
            self.stop()
            pytest.fail(f"simulated IOC not ready after {SIM_IOC_READY_TIMEOUT:g} s:\n{self.output()}")

    def stop(self) -> int | None:
        """Stop the IOC with SIGTERM (SIGKILL if it hangs); return its exit code."""
        if self.process is None:
            return None
        process, self.process = self.process, None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                return process.wait(SIM_IOC_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
        return process.wait()

    def restart(self) -> None:
        """A fresh IOC: every PV back at its initial value."""
        self.stop()
        self.start()


@pytest.fixture(scope="session")
def sim_ioc(tmp_path_factory):
    """The simulated IOC, serving SIM_IOC_PVS PVs on the test CA port for the whole session."""
    ioc = SimIOC(tmp_path_factory.mktemp("sim_ioc"))
    ioc.start()
    yield ioc
    ioc.stop()


@pytest.fixture
def restartable_sim_ioc(sim_ioc):
    """The session's simulated IOC for a test that stops or restarts it; running again afterwards."""
    yield sim_ioc
    if not sim_ioc.running:
        sim_ioc.start()
