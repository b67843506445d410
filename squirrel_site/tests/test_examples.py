"""The README's example script (docs/examples/), run as a subprocess: against the whole system
(daphne, a Celery worker, the monitor and the simulated IOC), with the IOC checked by a Channel
Access read of this test's own (pvs.epics_io), independent of the server and the worker; and
against a bare server for its error path."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from knox.models import AuthToken

from monitor import live
from pvs import epics_io, sim
from snapshots.models import Snapshot
from squirrel_site.testing import eventually

SCRIPT = Path(settings.BASE_DIR) / "docs" / "examples" / "snapshot_compare_restore.py"
TAG = "Timing"  # a Subsystem tag of the simulated IOC with setpoint pairs, integers, enums and strings


def run(url: str, token: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, SQUIRREL_URL=url, SQUIRREL_TOKEN=token)
    return subprocess.run([sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=300)


def run_script(url: str, token: str, *args: str) -> str:
    """The script's output; fails the test with its output unless it exits 0."""
    result = run(url, token, *args)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def read_ioc(addresses: list[str]) -> dict:
    """The IOC's values now, read over Channel Access by a service of this test process."""
    service = epics_io.EpicsService()
    try:
        results = service.read(addresses, timeout=5.0)
    finally:
        service.close()
    assert all(r.reading is not None for r in results.values()), results
    return {address: result.reading.value for address, result in results.items()}


def wait_for_monitor(expected: dict, timeout: float = 10.0) -> None:
    """Wait until the monitor's cache holds `expected`: the preview compares with the cache."""

    def seen() -> bool:
        cached = live.read_values(list(expected))
        assert all(v is not None and v.value == pytest.approx(expected[a]) for a, v in cached.items()), cached
        return True

    eventually(seen, timeout, what=f"the monitor seeing {expected}")


@pytest.mark.ioc
@pytest.mark.worker
def test_the_example_script_restores_a_tags_pvs_on_the_ioc(site, sim_ioc_registry, make_user, put_on_ioc):
    tagged = [pv for pv in sim_ioc_registry.pvs if TAG in pv.subsystems]
    pair, integer, enum, text = (
        next(pv for pv in tagged if pv.kind == kind) for kind in (sim.PAIR, sim.INT, sim.ENUM, sim.STRING)
    )
    addresses = [pair.setpoint, integer.setpoint, enum.setpoint, text.setpoint]
    _, token = AuthToken.objects.create(user=make_user("operator", "script"))

    dry_run = run_script(site, token, "--tag", f"Subsystem/{TAG}", "--dry-run")
    reference = int(re.search(r"^Snapshot (\d+) taken", dry_run, re.MULTILINE)[1])
    saved = read_ioc(addresses)
    changed = {
        pair.setpoint: saved[pair.setpoint] + 2.5,
        integer.setpoint: saved[integer.setpoint] + 3,
        enum.setpoint: (saved[enum.setpoint] + 1) % len(enum.labels),
        text.setpoint: "changed",
    }
    put_on_ioc(changed)
    wait_for_monitor(changed)

    output = run_script(site, token, "--tag", TAG, "--reference", str(reference))

    differing = re.findall(r"^  (\S+) +out_of_tolerance ", output, re.MULTILINE)
    assert set(changed) <= set(differing), output
    assert re.search(rf"^Preview \d+ of tag {TAG}: 4 to write", output, re.MULTILINE), output
    assert re.search(r"^Restore \d+: succeeded \(verified 4\)\.$", output, re.MULTILINE), output
    restored = read_ioc(addresses)
    assert restored[pair.setpoint] == pytest.approx(saved[pair.setpoint], abs=pair.abs_tolerance)
    assert {a: restored[a] for a in addresses[1:]} == {a: saved[a] for a in addresses[1:]}


@pytest.mark.slow  # starts Squirrel's own processes, as do the other slow tests here
@pytest.mark.django_db(transaction=True)
def test_an_api_error_is_printed_as_it_came_with_exit_status_2(live_server):
    result = run(live_server.url, "sqt_not-a-token", "--tag", "1")

    assert result.returncode == 2
    assert "POST" in result.stderr and "answered 401" in result.stderr and "Invalid token" in result.stderr


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_tag_name_that_matches_no_tag_stops_the_script_before_any_snapshot(live_server, admin_user):
    _, token = AuthToken.objects.create(user=admin_user)

    result = run(live_server.url, token, "--tag", "Area/Nowhere")

    assert result.returncode == 2 and "must name exactly one tag; matches: none" in result.stderr
    assert not Snapshot.objects.exists()
