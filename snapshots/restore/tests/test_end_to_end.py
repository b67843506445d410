"""Snapshot and restore through the API with a real Celery worker process and the simulated IOC.

The independent reads and writes on the IOC run in a subprocess with plain pyepics, so they
share nothing with the code under test.
"""

import time

import pytest
from django.db.models import Q

from jobs.models import Job
from pvs import sim
from snapshots.models import Restore, Snapshot
from squirrel_site.testing import eventually
from squirrel_site.testing.ioc import Worker, caget_many, caput_many
from squirrel_site.testing.jobs import wait_for_job

pytestmark = [pytest.mark.ioc, pytest.mark.worker]


class Workers:
    """The worker processes a test started; all stopped at its end."""

    def __init__(self, log_dir):
        self.log_dir, self.running = log_dir, []

    def start(self) -> Worker:
        self.running.append(Worker(self.log_dir / f"worker-{len(self.running)}.log"))
        return self.running[-1]

    def stop_all(self) -> None:
        for worker in self.running:
            worker.stop()


@pytest.fixture
def workers(sim_ioc_registry, redis_db, tmp_path):
    started = Workers(tmp_path)
    started.start()
    yield started
    started.stop_all()


@pytest.fixture
def api(client, admin_user):
    client.force_login(admin_user)
    return client


def take(api, title, addresses) -> int:
    response = api.post(
        "/api/v1/snapshots/",
        {"title": title, "mode": "direct", "selection": {"pv": addresses}},
        content_type="application/json",
    )
    job = wait_for_job(api, response.json()["id"])
    assert job["status"] == "succeeded", job["error"]
    return job["result_id"]


def preview_of(api, response) -> dict:
    """The preview a POST made: at once (201), or by a worker (202 with its job) when the monitor
    cannot serve the live values; no monitor runs here, so always the latter."""
    assert response.status_code == 202, response.content
    job = wait_for_job(api, response.json()["id"])
    assert (job["type"], job["status"]) == ("preview", "succeeded"), job["error"]
    return api.get(f"/api/v1/restore-previews/{job['result_id']}/").json()


def make_preview(api, snapshot_id, addresses) -> dict:
    return preview_of(
        api,
        api.post(
            "/api/v1/restore-previews/",
            {"snapshot": snapshot_id, "selection": {"pv": addresses}},
            content_type="application/json",
        ),
    )


def restore(api, snapshot_id, addresses) -> tuple[dict, dict]:
    preview = make_preview(api, snapshot_id, addresses)
    job = api.post(f"/api/v1/restore-previews/{preview['id']}/execute/", content_type="application/json").json()
    return preview, wait_for_job(api, job["id"])


def test_take_change_restore_verify_and_undo(api, workers, sim_ioc_registry):
    pair, integer, enum, text = (
        sim_ioc_registry.of_kind(kind)[1] for kind in (sim.PAIR, sim.INT, sim.ENUM, sim.STRING)
    )
    protected = sim_ioc_registry.of_kind(sim.PROTECTED)[0]
    addresses = [pair.setpoint, integer.setpoint, enum.setpoint, text.setpoint, protected.setpoint]
    saved = caget_many(addresses)
    snapshot_id = take(api, "Before the change", addresses)

    changed = {
        pair.setpoint: saved[pair.setpoint] + 1.5,
        integer.setpoint: saved[integer.setpoint] + 3,
        enum.setpoint: (saved[enum.setpoint] + 1) % len(enum.labels),
        text.setpoint: "changed",
    }
    caput_many(changed)

    preview, job = restore(api, snapshot_id, addresses)
    assert (preview["write_count"], preview["no_write_access_count"]) == (4, 1)
    assert job["status"] == "succeeded", job["error"]
    restored = Restore.objects.get(pk=job["result_id"])
    assert set(restored.items.values_list("status", flat=True)) == {"verified"}
    now = caget_many(addresses)
    assert now[pair.setpoint] == pytest.approx(saved[pair.setpoint])
    assert {a: now[a] for a in changed if a != pair.setpoint} == {a: saved[a] for a in changed if a != pair.setpoint}

    undo = preview_of(api, api.post(f"/api/v1/restores/{restored.id}/undo/", content_type="application/json"))
    execute = api.post(f"/api/v1/restore-previews/{undo['id']}/execute/", content_type="application/json")
    job = wait_for_job(api, execute.json()["id"])
    assert job["status"] == "succeeded", job["error"]
    assert caget_many([text.setpoint]) == {text.setpoint: "changed"}


def test_a_worker_killed_mid_restore_is_resumed_by_another_without_skipping(api, workers, sim_ioc_registry):
    magnets = [pv for pv in sim_ioc_registry.of_kind(sim.PAIR) if pv.wait_for_completion][:60]
    addresses = [pv.setpoint for pv in magnets]
    saved = caget_many(addresses)
    snapshot_id = take(api, "Magnets", addresses)
    caput_many({a: saved[a] + 2.0 for a in addresses})
    preview = make_preview(api, snapshot_id, addresses)
    assert preview["write_count"] == len(addresses)
    workers.start()  # a second worker, idle until the first dies
    execute = api.post(f"/api/v1/restore-previews/{preview['id']}/execute/", content_type="application/json")
    job_id = execute.json()["id"]
    assert Job.objects.get(pk=job_id).dispatched_at is not None  # sent at once, after the commit

    # Kill the worker that runs it as soon as the restore has begun writing (puts with completion are slow).
    started = Q(writing_stage__isnull=False) | Q(items__status="written")
    eventually(
        lambda: Restore.objects.filter(started, job_id=job_id).exists(),
        30,
        interval=0.005,
        what="the restore starting to write",
    )
    runner = next(worker for worker in workers.running if "snapshots.restore[" in worker.output())
    runner.kill()
    killed_at = time.monotonic()
    # Its items may not even exist yet: they are created beside the first stage's puts.
    killed = Restore.objects.get(job_id=job_id)
    assert not killed.is_finished, "the restore finished before the worker was killed"

    # The other worker's outbox relay finds the job orphaned and sends it again (the killed
    # worker's own message would come back only after the broker's visibility timeout, minutes).
    job = wait_for_job(api, job_id, timeout=60)
    assert time.monotonic() - killed_at < 15
    assert job["status"] == "succeeded", job["error"]
    assert Job.objects.get(pk=job_id).retry_count >= 1
    restored = Restore.objects.get(job_id=job_id)
    assert restored.runs == 2
    assert set(restored.items.values_list("status", flat=True)) == {"verified"}
    now = caget_many(addresses)
    assert all(now[a] == pytest.approx(saved[a]) for a in addresses)


def test_a_job_committed_whose_message_never_reached_the_broker_is_run_by_the_relay(
    api, workers, sim_ioc_registry, admin_user
):
    addresses = [pv.setpoint for pv in sim_ioc_registry.of_kind(sim.PAIR)][:5]
    # What a web process leaves when it dies (or the broker vanishes) between the commit and the send.
    job = Job.objects.create(
        type="snapshot",
        created_by=admin_user,
        data={"title": "Unsent", "mode": "direct", "selection": {"pv": addresses}},
    )
    assert wait_for_job(api, job.pk, timeout=30)["status"] == "succeeded"
    job.refresh_from_db()
    assert job.dispatched_at is not None
    assert Snapshot.objects.get(pk=job.result_id).pv_count == len(addresses)
