"""Restores through faults: what the operator is told, what the IOC holds, and that Squirrel works after.

Each test runs the real processes (squirrel_site.testing) on a private PostgreSQL and Redis and
the simulated IOC, confirms a restore of setpoints it moved away from a snapshot, breaks something
(Redis, PostgreSQL, a worker, the IOC) and then checks three things: (a) the HTTP answers and the
job's final status and message, (b) the setpoints as a separate Channel Access client reads and
watches them (each PV changed once, to its target, and never processed again), and (c) every
process still alive and a new restore succeeding. Measured times are printed (run with -s).
"""

import signal
import time

import pytest

from pvs import sim
from squirrel_site.testing import eventually
from squirrel_site.testing.fixtures import FAULT_IOC_PVS

pytestmark = [pytest.mark.fault, pytest.mark.worker, pytest.mark.ioc]

DEADLINE = 8  # seconds: SQUIRREL_RESTORE_START_DEADLINE of these tests' processes
PER_STAGE = 6  # setpoint/readback pairs restored from each stage (2 waits for completion)
OUTAGE = 30.0  # seconds PostgreSQL stays down
RESUME_LIMIT = 15.0  # seconds within which another worker resumes a killed worker's restore
MOVE = 1.5  # how far the test moves each setpoint away from its saved value


def restore_addresses() -> list[str]:
    """PER_STAGE pairs of each restore stage of the session's registry; stage 2's wait for completion."""
    pairs = sim.generate(FAULT_IOC_PVS).of_kind(sim.PAIR)
    return [pv.setpoint for stage in range(4) for pv in [p for p in pairs if p.restore_stage == stage][:PER_STAGE]]


def moved_away(squirrel, addresses) -> tuple[int, dict]:
    """Snapshot `addresses`, then move every one MOVE away: (snapshot id, {address: saved value})."""
    saved = squirrel.caget(addresses)
    snapshot = squirrel.wait_for_job(squirrel.take_snapshot(addresses, "before the move"))
    assert snapshot["status"] == "succeeded", snapshot
    squirrel.caput({address: value + MOVE for address, value in saved.items()})
    return snapshot["result_id"], saved


def confirmable(squirrel, addresses) -> tuple[dict, dict]:
    """A preview writing every one of `addresses` back to its saved value: (preview, saved)."""
    snapshot_id, saved = moved_away(squirrel, addresses)
    preview = squirrel.preview(snapshot_id, addresses)
    assert preview["write_count"] == len(addresses), preview
    return preview, saved


def restore(squirrel, preview) -> int:
    """Confirm `preview`; the job's id (the request must be accepted)."""
    response = squirrel.execute(preview["id"])
    assert response.status_code == 202, response.text
    return response.json()["id"]


def writing(squirrel, job_id: int, stage: int | None = None) -> bool:
    """The job's restore has begun writing (stage `stage`, if given)."""
    rows = squirrel.sql("SELECT writing_stage FROM snapshots_restore WHERE job_id = %s", job_id)
    return bool(rows) and rows[0][0] is not None and (stage is None or rows[0][0] >= stage)


def restore_of(squirrel, job_id: int) -> dict:
    """The job's restore as the API shows it to the operator."""
    job = squirrel.get(f"/api/v1/jobs/{job_id}/").json()
    return squirrel.get(f"/api/v1/restores/{job['result_id']}/").json()


def assert_at(squirrel, saved: dict) -> None:
    """The IOC holds every saved value (read by a separate Channel Access client)."""
    now = squirrel.caget(list(saved))
    assert now == pytest.approx(saved), {a: (now[a], v) for a, v in saved.items() if now[a] != pytest.approx(v)}


def assert_untouched(squirrel, saved: dict) -> None:
    """The IOC still holds every moved value: nothing was written."""
    assert_at(squirrel, {address: value + MOVE for address, value in saved.items()})


def assert_written_once(squirrel, changes: dict, saved: dict) -> None:
    """Every setpoint changed exactly once, to its saved value, and its record was not processed
    after that change (a second put of the same value would leave no change but a later time)."""
    assert {a: len(c) for a, c in changes.items() if len(c) != 1} == {}, changes
    assert {a: c[0][0] for a, c in changes.items()} == pytest.approx(saved)
    last = squirrel.last_processed(list(saved))
    assert {a: last[a][1] for a in saved if last[a][1] != changes[a][0][1]} == {}, "processed again after its write"


def assert_works_again(squirrel) -> None:
    """Every process alive, and a new restore (snapshot, move, preview, execute) succeeds."""
    assert squirrel.dead() == []
    addresses = restore_addresses()[:3]
    preview, saved = confirmable(squirrel, addresses)
    job_id = restore(squirrel, preview)
    job = squirrel.wait_for_job(job_id)
    assert job["status"] == "succeeded", job
    assert restore_of(squirrel, job_id)["status"] == "succeeded"
    assert_at(squirrel, saved)
    assert squirrel.dead() == []


def start(squirrel, *names: str) -> None:
    squirrel.env["SQUIRREL_RESTORE_START_DEADLINE"] = str(DEADLINE)
    squirrel.start(*names)


def test_a_restore_survives_redis_killed_and_restarted_empty_while_it_runs(squirrel):
    start(squirrel, "web", "worker", "monitor")
    addresses = restore_addresses()
    preview, saved = confirmable(squirrel, addresses)
    watch = squirrel.watch(addresses)
    job_id = restore(squirrel, preview)
    eventually(lambda: writing(squirrel, job_id), 30, interval=0.005, what="the restore writing")

    squirrel.redis.kill()
    killed = time.monotonic()
    assert squirrel.job(job_id)["status"] == "running", "the restore ended before Redis was killed"
    time.sleep(3)
    squirrel.redis.start()
    print(f"\nRedis down {time.monotonic() - killed:.1f} s during the restore")

    job = squirrel.wait_for_job(job_id, 60)
    assert job["status"] == "succeeded", job
    assert restore_of(squirrel, job_id)["status"] == "succeeded"
    assert_written_once(squirrel, watch.changes(), saved)
    assert_works_again(squirrel)
