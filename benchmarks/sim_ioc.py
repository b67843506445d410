"""The simulated IOC as a benchmark's subprocess: started on a private CA port, stopped by its PID;
the simulated pvAccess server likewise, and both at once for a registry of either protocol or a
mix (`start_servers`)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pvs import sim_pva  # noqa: E402  (pure: no Django, no EPICS library)

PROTOCOLS = ("ca", "pva", "mixed")


def start_sim_ioc(pvs: int, port: int, workdir: Path, *extra_args: str, timeout: float = 120.0) -> subprocess.Popen:
    """`manage.py run_sim_ioc --pvs N --port P` until it serves; exits the benchmark if it cannot."""
    command = ["run_sim_ioc", "--pvs", str(pvs), "--port", str(port), *extra_args]
    return _start(command, workdir / "ready", workdir / "ioc.log", "the simulated IOC", timeout)


def start_sim_pva(pvs: int, port: int, workdir: Path, timeout: float = 120.0) -> subprocess.Popen:
    """`manage.py run_sim_pva --pvs N --port P` (TCP P, UDP P + 1) until it serves; exits the
    benchmark if it cannot."""
    command = ["run_sim_pva", "--pvs", str(pvs), "--port", str(port)]
    return _start(command, workdir / "pva-ready", workdir / "pva.log", "the simulated pvAccess server", timeout)


def _start(command: list[str], ready: Path, log_path: Path, what: str, timeout: float) -> subprocess.Popen:
    """`manage.py COMMAND --ready-file READY`, its output in `log_path`, once READY exists."""
    env = {**os.environ, "SQUIRREL_SECRET_KEY": os.environ.get("SQUIRREL_SECRET_KEY", "benchmark-only")}
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", *command, "--ready-file", str(ready)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            stop_process(process)
            sys.exit(f"{what} did not start:\n{log_path.read_text()}")
        time.sleep(0.1)
    return process


def stop_process(process: subprocess.Popen, timeout: float = 15.0) -> None:
    """SIGTERM the process we started (by its PID); SIGKILL it if it does not stop in time."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


def pva_client_env(port: int) -> dict[str, str]:
    """The environment of a pvAccess client of the simulated server on TCP `port`: search its UDP
    port (`port` + 1) on loopback only."""
    return {"EPICS_PVA_AUTO_ADDR_LIST": "NO", "EPICS_PVA_ADDR_LIST": f"127.0.0.1:{port + 1}"}


def split(protocol: str, pvs: int) -> tuple[int, int]:
    """How many of `pvs` PVs speak Channel Access and pvAccess in `protocol`'s registry."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol {protocol!r}: one of {', '.join(PROTOCOLS)}")
    pva = {"ca": 0, "pva": pvs, "mixed": pvs - pvs // 2}[protocol]
    return pvs - pva, pva


def describe(protocol: str, pvs: int) -> str:
    ca, pva = split(protocol, pvs)
    return f"{ca} Channel Access PVs (run_sim_ioc), {pva} pvAccess PVs (run_sim_pva)"


def pva_pvs(pvs: int) -> list[dict]:
    """The registry rows (PV model fields) of the simulated pvAccess server's `pvs` PVs, for a
    benchmark to bulk-insert: addressed ``pva://NAME``, no read-backs, the NTTables read-only (a
    structure is saved and compared, never written), every other one writable."""
    return [
        {
            "setpoint_address": f"pva://{pv.name}",
            "description": f"pvAccess {pv.type}",
            "read_only": pv.type == sim_pva.TABLE,
            "wait_for_completion": True,
        }
        for pv in (sim_pva.generate(pvs) if pvs else [])
    ]


def start_servers(
    protocol: str, pvs: int, ca_port: int, pva_port: int, workdir: Path, *ioc_args: str
) -> list[subprocess.Popen]:
    """The servers of `protocol`'s registry of `pvs` PVs (`split`): the simulated IOC on CA port
    `ca_port` (with `ioc_args`, writing its registry CSV to `workdir`/registry.csv), the simulated
    pvAccess server on TCP `pva_port` (its registry: `pva_pvs`), or both. Stop them with
    `stop_process`."""
    ca, pva = split(protocol, pvs)
    processes: list[subprocess.Popen] = []
    try:
        if ca:
            registry = str(workdir / "registry.csv")
            processes.append(start_sim_ioc(ca, ca_port, workdir, *ioc_args, "--registry-csv", registry))
        if pva:
            processes.append(start_sim_pva(pva, pva_port, workdir))
    except BaseException:
        for process in processes:
            stop_process(process)
        raise
    return processes
