"""The simulated pvAccess server for tests, and independent pvAccess reads and writes (p4p's own
client in a subprocess, sharing nothing with pvs.pva_bulk)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from pvs import sim_pva
from squirrel_site.testing import eventually, terminate
from squirrel_site.testing.services import Ports
from squirrel_site.testing.workers import port_base

SIM_PVA_PVS = 100
KINDS = sim_pva.KINDS  # the value kind each simulated type reads as
START_TIMEOUT = 60.0
# pvAccess servers take loopback ports from here (a TCP port and the next one for UDP), a range of
# each parallel worker's own.
PORTS = Ports(port_base() + 150, limit=50)


class SimPva:
    """A `run_sim_pva` subprocess on loopback ports of its own: TCP `port`, UDP `port` + 1.

    `pvs` are the generator's PVs (pvs.sim_pva.SimPV: type and first value); `conf` is the client
    configuration that finds this server (and only it). Values written by one test stay for the
    next test of the session.
    """

    def __init__(self, workdir: Path, count: int = SIM_PVA_PVS, args: tuple[str, ...] = ()):
        self.pvs = sim_pva.generate(count)
        while True:
            self.port = PORTS.take()
            if PORTS.take() == self.port + 1:
                break
        self.conf = {"EPICS_PVA_AUTO_ADDR_LIST": "NO", "EPICS_PVA_ADDR_LIST": f"127.0.0.1:{self.port + 1}"}
        self.count, self.args = count, list(args)
        self.log_path, self.ready_file = workdir / "pva.log", workdir / "pva.ready"
        self.start()

    def start(self) -> None:
        """Start the server (again, after :meth:`stop`: same ports, the first values)."""
        self.ready_file.unlink(missing_ok=True)
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "run_sim_pva", "--pvs", str(self.count), "--port", str(self.port)]
                + ["--ready-file", str(self.ready_file), *self.args],
                cwd=settings.BASE_DIR,
                env=dict(os.environ, DJANGO_SETTINGS_MODULE=settings.SETTINGS_MODULE),
                stdout=log,
                stderr=subprocess.STDOUT,
            )

        def ready() -> bool:
            if self.process.poll() is not None:
                pytest.fail(f"run_sim_pva exited:\n{self.log_path.read_text()}")
            return self.ready_file.exists()

        eventually(ready, START_TIMEOUT, what="the simulated pvAccess server")

    def of_type(self, kind: str) -> sim_pva.SimPV:
        """The first PV of `kind` (a pvs.sim_pva type)."""
        return next(pv for pv in self.pvs if pv.type == kind)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        terminate(self.process)

    def pvget(self, addresses) -> dict:
        """{address: the p4p Value as a dict (arrays as lists)} read by p4p's threaded client in a
        fresh process."""
        return self._p4p(
            "out = {}\n"
            "for a in values['addresses']:\n"
            "    out[a] = plain(ctxt.get(a, timeout=5).todict())\n"
            "print(json.dumps(out))",
            addresses=list(addresses),
        )

    def pvput(self, values: dict) -> None:
        """Put {address: {field: value}} with completion through p4p's threaded client in a fresh process."""
        self._p4p(
            "for a, v in values['values'].items():\n    ctxt.put(a, v, wait=True, timeout=5)\nprint('{}')",
            values=values,
        )

    def _p4p(self, script: str, **values):
        code = (
            "import json, sys\n"
            "from p4p.client.thread import Context\n"
            "values = json.loads(sys.argv[1])\n"
            "ctxt = Context('pva', nt=False, conf=json.loads(sys.argv[2]), useenv=False)\n"
            "def plain(v):\n"
            "    if isinstance(v, dict):\n"
            "        return {k: plain(x) for k, x in v.items()}\n"
            "    return v.tolist() if hasattr(v, 'tolist') else v\n"
            f"{script}\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code, json.dumps(values), json.dumps(self.conf)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def pva_server(tmp_path_factory):
    """The simulated pvAccess server (pvs.sim_pva, SIM_PVA_PVS PVs), for the session."""
    server = SimPva(tmp_path_factory.mktemp("sim_pva"))
    yield server
    server.stop()


@pytest.fixture
def pva_channels(pva_server):
    """A pvs.channels.Service for both protocols whose pvAccess half finds `pva_server` (and only
    it); Channel Access goes to the process's service (the simulated IOC, with `sim_ioc`)."""
    from pvs import channels, pva_bulk

    contexts = pva_bulk.make_contexts(pva_server.conf, 2)
    service = pva_bulk.PvaService(contexts)
    yield channels.Service(pva=lambda: service)
    service.close()
    for context in contexts:
        context.close()


def pva_registry(server: SimPva, types=sim_pva.TYPES, **fields) -> dict:
    """Registry PVs (``pva://`` setpoints) of the first PV of each of `types` on `server`, with
    `fields` (device, tolerances, ...): {type: PV}."""
    from pvs.models import PV

    return {kind: PV.objects.create(setpoint_address=f"pva://{server.of_type(kind).name}", **fields) for kind in types}


def field_value(kind: str, value) -> dict:
    """What SimPva.pvput writes for a plain value of a pvs.sim_pva type (an enum's index)."""
    return {"value.index": value} if kind == sim_pva.ENUM else {"value": value}


def plain_value(kind: str, served: dict):
    """The plain value (an enum's index, a boolean as 0 or 1, a table's columns) of SimPva.pvget's answer."""
    value = served["value"]
    if kind == sim_pva.ENUM:
        return value["index"]
    if kind == sim_pva.BOOL:
        return int(value)
    return value


@pytest.fixture
def restartable_pva_server(pva_server):
    """The session's simulated pvAccess server for a test that stops or restarts it; running again
    (with its first values) afterwards."""
    yield pva_server
    if not pva_server.running:
        pva_server.start()
