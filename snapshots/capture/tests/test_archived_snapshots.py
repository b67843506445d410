"""Snapshots from the archive at a time T, against the real `run_sim_archiver` recording off the
simulated IOC: the values as they were at T, the PVs not archived stored as missing with the
reason, nothing stored when the archiver dies mid-request, and a restore from such a snapshot
through the normal preview by a real worker putting the IOC back as it was at T."""

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from pvs import sim
from pvs.models import PV
from snapshots.capture.services import SnapshotError, take_snapshot
from snapshots.comparison.rows import Comparison, compare
from snapshots.comparison.rules import ComparisonStatus
from snapshots.models import Restore, Snapshot
from squirrel_site.testing import eventually
from squirrel_site.testing.archiver import recorded
from squirrel_site.testing.ioc import Worker, caget_many, caput_many
from squirrel_site.testing.jobs import wait_for_job

pytestmark = pytest.mark.ioc

NOT_ARCHIVED = "SIM:NOT:ARCHIVED"


def moments_around_a_write(values: dict) -> tuple[datetime, dict]:
    """Record the present values, write `values` (address -> new value), wait until the archiver
    has them; (a time T between, the values before)."""
    before = {address: archived.value.value for address, archived in recorded(list(values)).items()}
    time.sleep(0.3)
    between = datetime.now(UTC)
    time.sleep(0.3)
    caput_many(values)

    def archived_after() -> bool:
        from pvs import archiver

        got = archiver.values_at(list(values), datetime.now(UTC))
        return all(got[a].value.value != before[a] for a in values)

    eventually(archived_after, 15, what="the writes archived")
    return between, before


def test_a_snapshot_from_the_archive_holds_the_values_at_t(sim_ioc_registry, sim_archiver, admin_user, redis_db):
    pair, text = sim_ioc_registry.of_kind(sim.PAIR)[2], sim_ioc_registry.of_kind(sim.STRING)[1]
    at, before = moments_around_a_write({pair.setpoint: pair.value + 2.5, text.setpoint: "later"})
    PV.objects.create(setpoint_address=NOT_ARCHIVED)
    selection = PV.objects.filter(setpoint_address__in=[pair.setpoint, text.setpoint, NOT_ARCHIVED])

    snapshot = take_snapshot(title="At T", created_by=admin_user, pvs=selection, mode="archive", at=at)

    assert (snapshot.mode, snapshot.archived_at, snapshot.pv_count, snapshot.disconnected_count) == (
        "archive",
        at,
        3,
        1,
    )
    saved = {value.pv_name: value for value in snapshot.values.all()}
    assert saved[pair.setpoint].setpoint_value == pytest.approx(before[pair.setpoint])
    assert saved[text.setpoint].setpoint_value == before[text.setpoint]
    for address in (pair.setpoint, text.setpoint):
        value = saved[address]
        assert (value.source, value.archiver, value.connected) == ("archive", "sim", True)
        assert value.timestamp <= at and value.age == pytest.approx((at - value.timestamp).total_seconds(), abs=1e-3)
    # The pair's readback, archived too, is its value at T.
    assert saved[pair.setpoint].readback_value == pytest.approx(before[pair.setpoint], abs=0.01)
    missing = saved[NOT_ARCHIVED]
    assert (missing.connected, missing.value_type, missing.source) == (False, "none", "archive")
    assert missing.reason.startswith("not archived by any of: sim")

    # Compared with the machine now (a direct snapshot), the written PVs differ, as they were changed after T.
    now = take_snapshot(title="Now", created_by=admin_user, pvs=selection, mode="direct")
    rows = {row.name: row for row in compare(Comparison(a=snapshot, b=now), limit=None).rows}
    assert rows[pair.setpoint].status == ComparisonStatus.OUT_OF_TOLERANCE
    assert rows[text.setpoint].status == ComparisonStatus.OUT_OF_TOLERANCE
    caput_many({pair.setpoint: pair.value, text.setpoint: before[text.setpoint]})


def test_an_archiver_killed_mid_snapshot_stores_nothing(sim_ioc_registry, sim_archiver, admin_user, redis_db):
    recorded(sim_archiver.addresses[:3])
    before = Snapshot.objects.count()
    sim_archiver.pause()
    outcome = {}

    def take():
        try:
            take_snapshot(title="Doomed", created_by=admin_user, mode="archive", at=datetime.now(UTC))
        except SnapshotError as exc:
            outcome["error"] = str(exc)

    taking = threading.Thread(target=take)
    taking.start()
    time.sleep(0.5)
    sim_archiver.kill()
    taking.join(30)
    assert outcome["error"].startswith("No archiver answered for") and "(sim: " in outcome["error"]
    assert Snapshot.objects.count() == before


def test_a_restore_from_the_archive_puts_the_ioc_back_as_it_was_at_t(
    sim_ioc_registry, sim_archiver, admin_user, redis_db, client, tmp_path, monkeypatch
):
    pair, integer = sim_ioc_registry.of_kind(sim.PAIR)[3], sim_ioc_registry.of_kind(sim.INT)[2]
    addresses = [pair.setpoint, integer.setpoint]
    at, before = moments_around_a_write({pair.setpoint: pair.value - 1.75, integer.setpoint: integer.value + 4})
    # The worker asks the same archiver: its environment names it.
    monkeypatch.setenv("SQUIRREL_ARCHIVER_URL", f"sim={sim_archiver.url}")
    worker = Worker(tmp_path / "worker.log")
    try:
        client.force_login(admin_user)
        local = at.astimezone(UTC).replace(tzinfo=None).isoformat()  # no offset: the server's zone (UTC)
        response = client.post(
            "/api/v1/snapshots/",
            {"title": "From the archive", "mode": "archive", "at": local, "selection": {"pv": addresses}},
            content_type="application/json",
        )
        assert response.status_code == 202, response.content
        job = wait_for_job(client, response.json()["id"])
        assert job["status"] == "succeeded", job["error"]
        snapshot = Snapshot.objects.get(pk=job["result_id"])
        assert (
            snapshot.archived_at == at.replace(microsecond=at.microsecond // 1000 * 1000)
            or abs((snapshot.archived_at - at).total_seconds()) < 0.001
        )
        listed = client.get("/api/v1/snapshots/").json()["results"][0]
        assert (listed["id"], listed["mode"]) == (snapshot.id, "archive") and listed["archived_at"]

        preview = client.post(
            "/api/v1/restore-previews/",
            {"snapshot": snapshot.id, "selection": {"pv": addresses}},
            content_type="application/json",
        )
        assert preview.status_code == 202, preview.content
        preview_job = wait_for_job(client, preview.json()["id"])
        assert preview_job["status"] == "succeeded", preview_job["error"]
        preview_id = preview_job["result_id"]
        assert client.get(f"/api/v1/restore-previews/{preview_id}/").json()["write_count"] == 2
        execute = client.post(f"/api/v1/restore-previews/{preview_id}/execute/", content_type="application/json")
        done = wait_for_job(client, execute.json()["id"])
        assert done["status"] == "succeeded", done["error"]
        assert set(Restore.objects.get(pk=done["result_id"]).items.values_list("status", flat=True)) == {"verified"}
        now = caget_many(addresses)
        assert now[pair.setpoint] == pytest.approx(before[pair.setpoint])
        assert now[integer.setpoint] == before[integer.setpoint]
    finally:
        worker.stop()
        caput_many({pair.setpoint: pair.value, integer.setpoint: integer.value})


def test_a_time_before_every_sample_leaves_each_pv_missing_with_the_reason(
    sim_ioc_registry, sim_archiver, admin_user, redis_db
):
    pv = sim_ioc_registry.of_kind(sim.PAIR)[0]
    recorded([pv.setpoint])
    selection = PV.objects.filter(setpoint_address=pv.setpoint)
    three_days_ago = datetime.now(UTC) - timedelta(days=3)
    snapshot = take_snapshot(title="Too early", created_by=admin_user, pvs=selection, mode="archive", at=three_days_ago)
    (value,) = snapshot.values.all()
    assert (value.connected, snapshot.disconnected_count) == (False, 1)
    assert "no sample at or before" in value.reason
