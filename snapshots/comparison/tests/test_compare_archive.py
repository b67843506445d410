"""Compare with the archive at a time T (snapshots.comparison.archive): the compare page's form and
the API start the snapshot job from the archive for the compared snapshot's PVs; once it ran, the
job's page opens the comparison (and the job's API answer has its URL): the snapshot against the
archive, or the archive against live values. Against the real run_sim_archiver recording the
simulated IOC; the job runs through jobs.runner.run_job as a worker runs it. Bad times, no
archiver, a snapshot that does not exist and a user who may not take snapshots are refused, and
nothing is started."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from jobs.models import Job
from jobs.runner import run_job
from pvs import sim
from pvs.models import PV
from snapshots.capture.runners import SnapshotRunner
from squirrel_site.testing import eventually
from squirrel_site.testing.archiver import recorded
from squirrel_site.testing.ioc import caput_many

API = "/api/v1/compare/archive/"
PAGE = "/compare/archive/"


def local(moment: datetime) -> str:
    """A time as people type it in the form: 24-hour, the server's time zone."""
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S")


# Refusals: nothing started. No IOC: the archiver is configured, never asked.


@pytest.fixture
def snapshot(db, make_pvs, make_snapshot):
    make_pvs("Q1:SP")
    return make_snapshot("reference", {"Q1:SP": 1.0})


@pytest.fixture
def configured(snapshot, settings):
    settings.ARCHIVERS = [("sim", "http://127.0.0.1:9")]


@pytest.mark.parametrize(
    ("at", "message"),
    [
        ("2999-01-01T00:00:00Z", "is in the future"),
        ("1980-01-01T00:00:00Z", "is before 1990"),
        ("yesterday", "Datetime has wrong format"),
        ("=cmd|' /C calc'!A0", "Datetime has wrong format"),
    ],
)
def test_the_api_refuses_a_bad_time_and_starts_nothing(client, admin_user, snapshot, configured, at, message):
    client.force_login(admin_user)
    response = client.post(API, {"a": snapshot.pk, "at": at}, content_type="application/json")
    assert response.status_code == 400, response.content
    assert message in " ".join(response.json()["error"]["fields"]["at"])
    assert not Job.objects.exists()


def test_a_nul_in_the_time_is_refused(client, admin_user, snapshot, configured):
    client.force_login(admin_user)
    body = json.dumps({"a": snapshot.pk, "at": "2026-12-08T00:00:00\x00"})  # a \u0000 escape in the JSON
    response = client.post(API, body, content_type="application/json")
    assert response.status_code == 400 and "NUL" in response.json()["error"]["message"]
    assert not Job.objects.exists()


def test_the_api_refuses_no_archiver_an_unknown_snapshot_and_a_viewer(client, admin_user, viewer, snapshot, settings):
    at = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    client.force_login(admin_user)
    settings.ARCHIVERS = []
    response = client.post(API, {"a": snapshot.pk, "at": at}, content_type="application/json")
    assert response.status_code == 400 and "No archiver is configured" in response.json()["error"]["fields"]["at"][0]
    settings.ARCHIVERS = [("sim", "http://127.0.0.1:9")]
    response = client.post(API, {"a": 987654, "at": at}, content_type="application/json")
    assert response.status_code == 400 and "a" in response.json()["error"]["fields"]
    response = client.post(API, {"a": snapshot.pk, "at": at, "against": "drift"}, content_type="application/json")
    assert response.status_code == 400 and "against" in response.json()["error"]["fields"]
    client.force_login(viewer)
    assert client.post(API, {"a": snapshot.pk, "at": at}, content_type="application/json").status_code == 403
    assert not Job.objects.exists()


def test_the_form_shows_its_errors_as_a_400(client, admin_user, snapshot, configured):
    client.force_login(admin_user)
    response = client.post(PAGE, {"a": snapshot.pk, "at": "2999-01-01 00:00:00", "against": "snapshot"})
    assert response.status_code == 400
    assert (
        "is in the future" in response.content.decode() and 'id="compare-archive-errors"' in response.content.decode()
    )
    response = client.post(PAGE, {"a": snapshot.pk, "at": "1" * 500, "against": "snapshot"})
    assert response.status_code == 400 and "Enter a valid date/time" in response.content.decode()
    assert not Job.objects.exists()


def test_the_compare_page_offers_it_to_those_who_may_take_snapshots(client, admin_user, viewer, snapshot, settings):
    client.force_login(admin_user)
    query = {"a": snapshot.pk, "b": "live"}
    settings.ARCHIVERS = []
    assert 'id="compare-archive-form"' not in client.get("/compare/", query).content.decode()
    settings.ARCHIVERS = [("sim", "http://127.0.0.1:9")]
    html = client.get("/compare/", query).content.decode()
    assert 'id="compare-archive-form"' in html and f'name="a" value="{snapshot.pk}"' in html
    client.force_login(viewer)
    assert 'id="compare-archive-form"' not in client.get("/compare/", query).content.decode()


# Against the simulated archiver: the job, then the comparison.


def changed_after(ioc) -> tuple[PV, float, float, datetime]:
    """A pair PV archived at one value at T, then written to another (archived too):
    (its PV, the value at T, the value now, T)."""
    pair = ioc.of_kind(sim.PAIR)[3]
    before = recorded([pair.setpoint])[pair.setpoint].value.value
    at = datetime.now(UTC)
    after = before + 2.5
    caput_many({pair.setpoint: after})

    def archived_now():
        return recorded([pair.setpoint])[pair.setpoint].value.value == after

    eventually(archived_now, 15, what="the write archived")
    return PV.objects.get(setpoint_address=pair.setpoint), before, after, at


@pytest.mark.ioc
def test_a_snapshot_against_the_archive_at_t_through_the_api(
    client, admin_user, sim_ioc_registry, sim_archiver, make_snapshot
):
    pv, before, after, at = changed_after(sim_ioc_registry)
    steady = sim_ioc_registry.of_kind(sim.PAIR)[5]
    try:
        reference = make_snapshot("now", {pv.setpoint_address: after, steady.setpoint: steady.value})
        client.force_login(admin_user)
        response = client.post(API, {"a": reference.pk, "at": at.isoformat()}, content_type="application/json")
        assert response.status_code == 202, response.content
        job = response.json()
        assert job["data"]["mode"] == "archive" and job["data"]["compare"] == {"a": reference.pk}
        assert sorted(job["data"]["selection"]["pv"]) == sorted([pv.setpoint_address, steady.setpoint])
        assert job["compare_url"] is None  # not taken yet
        run_job(job["id"], SnapshotRunner.run)
        done = client.get(f"/api/v1/jobs/{job['id']}/").json()
        archived = done["result_id"]
        assert done["status"] == "succeeded"
        assert done["compare_url"] == f"/api/v1/compare/?a={reference.pk}&b={archived}"
        rows = {row["pv_name"]: row for row in client.get(done["compare_url"]).json()["results"]}
        assert (
            rows[pv.setpoint_address]["b"]["value"] == before
            and rows[pv.setpoint_address]["status"] == "out_of_tolerance"
        )
        assert rows[steady.setpoint]["status"] == "equal"
    finally:
        caput_many({pv.setpoint_address: sim_ioc_registry.of_kind(sim.PAIR)[3].value})


@pytest.mark.ioc
def test_the_archive_against_live_values_from_the_compare_page(
    client, admin_user, sim_ioc_registry, sim_archiver, make_snapshot
):
    pv, before, after, at = changed_after(sim_ioc_registry)
    try:
        reference = make_snapshot("now", {pv.setpoint_address: after})
        client.force_login(admin_user)
        response = client.post(PAGE, {"a": reference.pk, "at": local(at), "against": "live"})
        assert response.status_code == 302 and response["Location"].startswith("/jobs/")
        job = Job.objects.get()
        assert job.data["compare"] == {"live": True}
        # The form's time is to the second: T rounded down, still before the write.
        assert datetime.fromisoformat(job.data["at"]) == at.replace(microsecond=0)
        run_job(job.pk, SnapshotRunner.run)
        job.refresh_from_db()
        response = client.get(f"/jobs/{job.pk}/")
        assert response.status_code == 302 and response["Location"] == f"/compare/?a={job.result_id}&b=live"
        assert client.get(response["Location"]).status_code == 200
    finally:
        caput_many({pv.setpoint_address: sim_ioc_registry.of_kind(sim.PAIR)[3].value})
