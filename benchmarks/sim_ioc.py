"""The simulated IOC as a benchmark's subprocess: started on a private CA port, stopped by its PID."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start_sim_ioc(pvs: int, port: int, workdir: Path, *extra_args: str, timeout: float = 120.0) -> subprocess.Popen:
    """`manage.py run_sim_ioc --pvs N --port P` until it serves; exits the benchmark if it cannot."""
    ready = workdir / "ready"
    log_path = workdir / "ioc.log"
    command = [
        sys.executable,
        "manage.py",
        "run_sim_ioc",
        "--pvs",
        str(pvs),
        "--port",
        str(port),
        "--ready-file",
        str(ready),
        *extra_args,
    ]
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            stop_process(process)
            sys.exit(f"the simulated IOC did not start:\n{log_path.read_text()}")
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
