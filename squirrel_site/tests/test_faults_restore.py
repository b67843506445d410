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
RECONNECT_LIMIT = 60.0  # seconds within which the worker reads a restarted IOC again
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


def test_requests_answered_503_while_redis_is_down_record_nothing_and_never_run(squirrel):
    start(squirrel, "web", "worker")
    addresses = restore_addresses()[:6]
    preview, saved = confirmable(squirrel, addresses)
    before = squirrel.count("jobs_job"), squirrel.count("squirrel_site_auditentry")

    squirrel.redis.kill()
    snapshot_request = {"title": "refused", "mode": "direct", "selection": {"pv": addresses}}
    answers = {
        "execute": squirrel.execute(preview["id"]),
        "snapshot": squirrel.post("/api/v1/snapshots/", snapshot_request),
    }
    for request, answer in answers.items():
        assert answer.status_code == 503, (request, answer.text)
        assert int(answer.headers["Retry-After"]) > 0
        assert "nothing was recorded" in answer.json()["error"]["message"], answer.text
    assert (squirrel.count("jobs_job"), squirrel.count("squirrel_site_auditentry")) == before

    # Redis back, the worker's relay running: past the start deadline, still nothing has run.
    squirrel.redis.start()
    time.sleep(DEADLINE + 2)
    assert (squirrel.count("jobs_job"), squirrel.count("squirrel_site_auditentry")) == before
    assert_untouched(squirrel, saved)

    # The operator tries again, now that the queue answers: accepted and done.
    job = squirrel.wait_for_job(restore(squirrel, preview))
    assert job["status"] == "succeeded", job
    assert_at(squirrel, saved)
    assert squirrel.dead() == []


def test_restores_whose_messages_wait_past_their_deadline_expire_without_writing(squirrel):
    start(squirrel, "web", "worker")
    addresses = restore_addresses()[:6]
    lost, saved = confirmable(squirrel, addresses)
    late = squirrel.preview(lost["snapshot"], addresses)
    squirrel["worker"].stop()  # nothing takes messages off the queue now
    lost_job = restore(squirrel, lost)  # 202: committed, its message sent ...
    squirrel.redis.kill()  # ... and lost with Redis
    squirrel.redis.start()  # empty
    late_job = restore(squirrel, late)  # 202: its message waits in Redis for a worker
    accepted = time.monotonic()

    time.sleep(DEADLINE + 1)
    squirrel["worker"].start()
    squirrel["worker"].wait_ready()
    for job_id in (lost_job, late_job):
        job = squirrel.wait_for_job(job_id, 30)
        assert job["status"] == "expired", job
        assert f"not started within {DEADLINE} s" in job["message"] and "nothing was written" in job["message"], job
        assert squirrel.get(f"/api/v1/jobs/{job_id}/").json()["status"] == "expired"
        assert squirrel.sql("SELECT count(*) FROM snapshots_restore WHERE job_id = %s", job_id) == [(0,)]
    print(f"\nrestores expired {time.monotonic() - accepted:.1f} s after they were accepted (deadline {DEADLINE} s)")
    assert_untouched(squirrel, saved)
    assert_works_again(squirrel)


def test_a_restore_interrupted_by_postgresql_stopped_for_30_s_resumes_and_writes_each_pv_once(squirrel):
    start(squirrel, "web", "worker")
    addresses = restore_addresses()
    preview, saved = confirmable(squirrel, addresses)
    watch = squirrel.watch(addresses)
    job_id = restore(squirrel, preview)
    eventually(lambda: writing(squirrel, job_id, stage=2), 30, interval=0.005, what="the restore writing stage 2")

    squirrel.postgres.stop()
    stopped = time.monotonic()
    during = squirrel.get(f"/api/v1/jobs/{job_id}/")
    assert during.status_code == 503 and int(during.headers["Retry-After"]) > 0, during.text
    time.sleep(max(0.0, OUTAGE - (time.monotonic() - stopped)))
    assert squirrel.dead() == []
    squirrel.postgres.start()
    back = time.monotonic()
    print(f"\nPostgreSQL down {back - stopped:.1f} s during the restore")

    job = squirrel.wait_for_job(job_id, 60)
    print(f"restore ended {time.monotonic() - back:.1f} s after PostgreSQL returned: {job}")
    assert job["status"] == "succeeded", job
    assert job["retry_count"] >= 1
    assert restore_of(squirrel, job_id)["status"] == "succeeded"
    assert_written_once(squirrel, watch.changes(), saved)
    assert_works_again(squirrel)


def test_a_restore_whose_worker_is_killed_mid_stage_is_resumed_by_the_other_within_15_s(squirrel):
    start(squirrel, "web", "worker", "worker-2")
    addresses = restore_addresses()
    preview, saved = confirmable(squirrel, addresses)
    watch = squirrel.watch(addresses)
    job_id = restore(squirrel, preview)
    eventually(lambda: writing(squirrel, job_id, stage=2), 30, interval=0.002, what="the restore writing stage 2")

    runner = next(name for name in ("worker", "worker-2") if "snapshots.restore[" in squirrel[name].output())
    squirrel[runner].kill()
    killed = time.monotonic()
    assert squirrel.job(job_id)["status"] == "running", "the restore ended before its worker was killed"
    eventually(lambda: squirrel.job(job_id)["retry_count"] >= 1, RESUME_LIMIT, interval=0.05, what="resumed")
    resumed = time.monotonic() - killed
    job = squirrel.wait_for_job(job_id, 60)
    ended = time.monotonic() - killed
    print(f"\nkilled {runner}: restore resumed by the other worker after {resumed:.1f} s, ended after {ended:.1f} s")
    assert job["status"] == "succeeded", job
    assert ended < RESUME_LIMIT
    assert squirrel.sql("SELECT runs FROM snapshots_restore WHERE job_id = %s", job_id) == [(2,)]
    assert_written_once(squirrel, watch.changes(), saved)

    squirrel[runner].start()  # as systemd would
    squirrel[runner].wait_ready()
    assert_works_again(squirrel)


def test_a_restore_whose_ioc_is_killed_ends_partial_within_its_timeouts(squirrel):
    start(squirrel, "web", "worker")
    addresses = restore_addresses()
    preview, _ = confirmable(squirrel, addresses)
    job_id = restore(squirrel, preview)
    eventually(lambda: writing(squirrel, job_id, stage=2), 30, interval=0.005, what="the restore writing stage 2")

    squirrel.ioc.signal(signal.SIGKILL)
    killed = time.monotonic()
    job = squirrel.wait_for_job(job_id, 60)
    print(f"\nIOC killed: the restore ended {time.monotonic() - killed:.1f} s later")
    assert job["status"] == "succeeded", job  # the job ran to its end; the restore says how it went
    told = restore_of(squirrel, job_id)
    assert told["status"] == "partial", told
    lost = {status: n for status, n in told["summary"].items() if status in ("disconnected", "timeout")}
    assert sum(lost.values()) > 0, told["summary"]
    failed = squirrel.get(f"/api/v1/restores/{told['id']}/items/?status={next(iter(lost))}").json()["results"]
    assert failed and all(item["message"] for item in failed), failed

    squirrel.ioc.process.wait(10)
    squirrel.ioc.start()
    squirrel.ioc.wait_ready()
    restarted = time.monotonic()
    eventually(lambda: snapshot_connected(squirrel, addresses), RECONNECT_LIMIT, interval=0.5, what="reconnected")
    print(f"the worker read every PV again {time.monotonic() - restarted:.1f} s after the IOC was back")
    assert_works_again(squirrel)


def snapshot_connected(squirrel, addresses) -> bool:
    """A direct snapshot of `addresses` now finds every one connected."""
    job = squirrel.wait_for_job(squirrel.take_snapshot(addresses, "connected?"))
    assert job["status"] == "succeeded", job
    return squirrel.get(f"/api/v1/snapshots/{job['result_id']}/").json()["disconnected_count"] == 0
