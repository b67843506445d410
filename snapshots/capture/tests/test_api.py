"""The snapshot and restore API without an IOC: parameters, errors, permissions, payloads."""

import io
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import Job, JobType
from pvs.models import PV
from snapshots.capture.services import take_snapshot
from snapshots.models import RestorePreview, Snapshot, SnapshotTag
from squirrel_site import epics_values
from squirrel_site.epics_values import Value
from squirrel_site.testing.restore import preview_record
from squirrel_site.testing.snapshots import FakeReader

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client, make_user):
    """A signed-in operator: takes snapshots, retags them and restores."""
    user = make_user("operator", "op")
    client.force_login(user)
    return user


@pytest.fixture
def viewer(client, make_user):
    """A signed-in viewer: may only read."""
    user = make_user("viewer", "viewer")
    client.force_login(user)
    return user


def test_a_viewer_reads_but_cannot_take_retag_or_restore(client, viewer, snapshot):
    assert client.get("/api/v1/snapshots/").status_code == 200
    assert client.post("/api/v1/snapshots/", {"title": "t"}, content_type="application/json").status_code == 403
    assert (
        client.put(f"/api/v1/snapshots/{snapshot.id}/tags/", {"tags": []}, content_type="application/json").status_code
        == 403
    )
    preview = preview_record(snapshot, viewer)
    refused = client.post(f"/api/v1/restore-previews/{preview.id}/execute/", content_type="application/json")
    assert refused.status_code == 403 and "snapshots.add_restore" in refused.json()["error"]["message"]
    assert (
        client.post("/api/v1/restore-previews/", {"snapshot": snapshot.id}, content_type="application/json").status_code
        == 403
    )
    assert not Job.objects.exists()


@pytest.fixture
def snapshot(admin_user, redis_db):
    PV.objects.create(setpoint_address="T:A_SP", readback_address="T:A_RB")
    PV.objects.create(setpoint_address="T:C")
    reader = FakeReader({"T:A_SP": 1.5, "T:A_RB": 1.25, "T:C": 7})
    return take_snapshot(title="Before shutdown", comment="run 42", created_by=admin_user, mode="direct", reader=reader)


def test_taking_a_snapshot_creates_a_job_and_enqueues_it_on_commit(
    client, operator, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            "/api/v1/snapshots/",
            {"title": "Nightly", "mode": "cache", "selection": {"device": "Q"}},
            content_type="application/json",
        )
    assert response.status_code == 202, response.json()
    job = Job.objects.get(pk=response.json()["id"])
    assert (job.type, job.created_by, job.data["mode"], job.data["selection"]) == (
        JobType.SNAPSHOT,
        operator,
        "cache",
        {"device": "Q"},
    )
    assert len(callbacks) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"mode": "cache"}, "title"),
        ({"title": "t", "mode": "sometimes"}, "mode"),
        ({"title": "t", "selection": {"colour": "red"}}, "selection"),
        ({"title": "t", "selection": {"tag": "not-a-number"}}, "selection.tag"),
        ({"title": "t", "selection": {"pv": ["BAD NAME"]}}, "selection.pv"),
        ({"title": "t", "tags": ["no-such-tag"]}, "tags"),
    ],
)
def test_bad_snapshot_parameters_are_400_with_the_field(client, operator, body, field):
    response = client.post("/api/v1/snapshots/", body, content_type="application/json")
    assert response.status_code == 400 and list(response.json()["error"]["fields"]) == [field]
    assert not Job.objects.exists()


def test_only_admins_take_golden_snapshots(client, operator):
    response = client.post("/api/v1/snapshots/", {"title": "t", "tags": ["golden"]}, content_type="application/json")
    assert response.status_code == 400 and "Only administrators" in response.json()["error"]["fields"]["tags"][0]


def test_list_searches_title_and_marks_golden(client, operator, snapshot):
    snapshot.tags.add(SnapshotTag.objects.get(name="golden"))
    rows = client.get("/api/v1/snapshots/", {"search": "shutdown"}).json()["results"]
    assert [(r["title"], r["golden"], r["pv_count"]) for r in rows] == [("Before shutdown", True, 2)]
    assert client.get("/api/v1/snapshots/", {"search": "nothing"}).json()["results"] == []


def test_values_are_typed_and_paged(client, operator, snapshot):
    body = client.get(f"/api/v1/snapshots/{snapshot.id}/values/", {"page_size": 1}).json()
    assert [(v["pv_name"], v["setpoint"], v["readback"]) for v in body["results"]] == [("T:A_SP", 1.5, 1.25)]
    second = client.get(body["next"]).json()["results"]
    assert [(v["pv_name"], v["setpoint"], v["value_type"]) for v in second] == [("T:C", 7, "int")]


def test_export_then_import_gives_the_same_values(client, operator, snapshot):
    exported = client.get(f"/api/v1/snapshots/{snapshot.id}/export/", {"format": "json"})
    assert exported["Content-Type"].startswith("application/json")
    upload = io.BytesIO(exported.content)
    upload.name = "snapshot.json"
    response = client.post("/api/v1/snapshots/import/", {"file": upload, "title": "Copy"})
    assert response.status_code == 201, response.json()
    copy = Snapshot.objects.get(pk=response.json()["id"])
    assert {(v.pv_name, v.setpoint_value, v.readback_value) for v in copy.values.all()} == {
        ("T:A_SP", 1.5, 1.25),
        ("T:C", 7, None),
    }


def test_csv_export_then_import_gives_the_same_values(client, operator, snapshot):
    exported = client.get(f"/api/v1/snapshots/{snapshot.id}/export/", {"format": "csv"})
    assert exported.status_code == 200 and exported["Content-Type"].startswith("text/csv")
    upload = io.BytesIO(exported.content)
    upload.name = "snapshot.csv"
    copy = Snapshot.objects.get(pk=client.post("/api/v1/snapshots/import/", {"file": upload}).json()["id"])
    assert {(v.pv_name, v.setpoint_value) for v in copy.values.all()} == {("T:A_SP", 1.5), ("T:C", 7)}


def test_export_answers_in_the_format_asked_whatever_the_accept_header(client, operator, snapshot):
    url = f"/api/v1/snapshots/{snapshot.id}/export/"
    exported = client.get(url, {"format": "csv"}, HTTP_ACCEPT="text/csv")
    assert exported.status_code == 200 and exported["Content-Type"].startswith("text/csv")
    refused = client.get(url, {"format": "xml"}, HTTP_ACCEPT="text/csv")
    assert refused.status_code == 400 and refused.json()["error"]["fields"] == {"format": ["Use json, csv or sav."]}


def test_sav_export_then_import_gives_the_same_values(client, operator, snapshot):
    exported = client.get(f"/api/v1/snapshots/{snapshot.id}/export/", {"format": "sav"})
    assert exported.status_code == 200 and exported["Content-Type"].startswith("text/plain")
    assert exported["Content-Disposition"] == f'attachment; filename="snapshot-{snapshot.id}.sav"'
    assert exported.content.decode().splitlines()[1:] == ["T:A_SP 1.5", "T:C 7", "<END>"]
    upload = io.BytesIO(exported.content)
    upload.name = "ioc.sav"
    response = client.post("/api/v1/snapshots/import/", {"file": upload})
    assert response.status_code == 201, response.json()
    assert (response.json()["origin"], response.json()["unknown_pvs"]) == ("imported", [])
    copy = Snapshot.objects.get(pk=response.json()["id"])
    assert {(v.pv_name, v.value_type, v.setpoint_value) for v in copy.values.all()} == {
        ("T:A_SP", "float", 1.5),
        ("T:C", "int", 7),
    }


def test_a_save_file_import_lists_its_unknown_pvs(client, operator, snapshot):
    upload = io.BytesIO(b"--- Start BURT header\n--- End BURT header\nT:C 1 8\nOLD:PV 1 2.5\n")
    upload.name = "old.snap"
    response = client.post("/api/v1/snapshots/import/", {"file": upload, "title": "From BURT"})
    assert response.status_code == 201, response.json()
    assert (response.json()["title"], response.json()["unknown_pvs"]) == ("From BURT", ["OLD:PV"])


def test_a_truncated_save_file_is_400_with_its_line_and_stores_nothing(client, operator):
    upload = io.BytesIO(b"# autosave R5.3\tAutomatically generated - DO NOT MODIFY - 191010-162704\nT:C 7\n")
    upload.name = "cut.sav"
    response = client.post("/api/v1/snapshots/import/", {"file": upload})
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["file"][0].startswith("cut.sav:2: The file does not end with <END>")
    assert not Snapshot.objects.exists()


def test_an_unknown_export_format_is_400(client, operator, snapshot):
    assert client.get(f"/api/v1/snapshots/{snapshot.id}/export/", {"format": "xml"}).status_code == 400


def test_a_malformed_import_is_400_and_stores_nothing(client, operator):
    upload = io.BytesIO(b"{not json")
    upload.name = "broken.json"
    response = client.post("/api/v1/snapshots/import/", {"file": upload})
    assert response.status_code == 400 and response.json()["error"]["fields"]["file"]
    assert not Snapshot.objects.exists()


def test_golden_tag_changes_need_an_admin(client, operator, snapshot, admin_role_user):
    url = f"/api/v1/snapshots/{snapshot.id}/tags/"
    refused = client.put(url, {"tags": ["golden"]}, content_type="application/json")
    assert refused.status_code == 400 and not snapshot.tags.exists()
    client.force_login(admin_role_user)
    assert client.put(url, {"tags": ["golden"]}, content_type="application/json").json()["golden"] is True


def test_executing_a_preview_creates_a_restore_job(client, operator, snapshot, django_capture_on_commit_callbacks):
    preview = preview_record(snapshot, operator)
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            f"/api/v1/restore-previews/{preview.id}/execute/", {"verify_timeout": 3}, content_type="application/json"
        )
    assert response.status_code == 202, response.json()
    job = Job.objects.get(pk=response.json()["id"])
    assert (job.type, job.data) == (JobType.RESTORE, {"preview": preview.id, "verify": True, "verify_timeout": 3.0})
    assert len(callbacks) == 1


def test_executing_again_resumes_an_unfinished_restore_but_not_a_finished_one(client, operator, snapshot):
    from snapshots.models import Restore, RestoreStatus

    preview = preview_record(snapshot, operator)
    restore = Restore.objects.create(
        preview=preview, snapshot=snapshot, created_by=operator, status=RestoreStatus.RUNNING
    )
    url = f"/api/v1/restore-previews/{preview.id}/execute/"
    assert client.post(url, content_type="application/json").status_code == 202
    Restore.objects.filter(pk=restore.pk).update(status=RestoreStatus.SUCCEEDED)
    refused = client.post(url, content_type="application/json")
    assert refused.status_code == 400 and "already executed" in refused.json()["error"]["message"]


def test_an_expired_preview_is_refused(client, operator, snapshot):
    preview = preview_record(snapshot, operator, expires_at=timezone.now() - timedelta(seconds=1))
    response = client.post(f"/api/v1/restore-previews/{preview.id}/execute/", content_type="application/json")
    assert response.status_code == 400 and "expired" in response.json()["error"]["message"]
    assert not Job.objects.exists()


def test_preview_of_an_unknown_snapshot_is_400(client, operator):
    response = client.post("/api/v1/restore-previews/", {"snapshot": 999}, content_type="application/json")
    assert response.status_code == 400 and list(response.json()["error"]["fields"]) == ["snapshot"]


@pytest.mark.parametrize("selection", [{"pv": ["NOT:IN:REGISTRY", "NOR:THIS"]}, {"search": "nothing-matches-this"}])
def test_a_preview_of_a_selection_matching_no_pv_is_400_and_makes_nothing(client, operator, snapshot, selection):
    response = client.post(
        "/api/v1/restore-previews/", {"snapshot": snapshot.id, "selection": selection}, content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"selection": ["No PV matches this selection."]}
    assert not RestorePreview.objects.exists() and not Job.objects.exists()


def test_anonymous_cannot_use_the_snapshot_api(client, snapshot):
    assert client.get("/api/v1/snapshots/").status_code == 401
    assert client.post("/api/v1/restore-previews/", {}, content_type="application/json").status_code == 401


def test_a_preview_from_a_fresh_cache_is_made_at_once(client, operator, snapshot, redis_db):
    from monitor import live

    now = timezone.now().timestamp()
    for address, value in {"T:A_SP": 1.5, "T:C": 3.0}.items():
        redis_db.hset(live.VALUES_KEY, address, epics_values.pack(Value(address, "float", value, 0, 0, now, now, True)))
    live.write_heartbeat(redis_db, live.Shard(0, 1), {"synced": True})
    response = client.post("/api/v1/restore-previews/", {"snapshot": snapshot.id}, content_type="application/json")
    assert response.status_code == 201, response.json()
    assert (response.json()["live_source"], response.json()["write_count"]) == ("cache", 1)
    assert not Job.objects.exists()


def test_a_preview_the_cache_cannot_serve_is_made_by_a_worker(
    client, operator, snapshot, redis_db, monkeypatch, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            "/api/v1/restore-previews/",
            {"snapshot": snapshot.id, "include_unchanged": True},
            content_type="application/json",
        )
    assert response.status_code == 202, response.json()  # no monitor: the web process reads nothing itself
    job = Job.objects.get(pk=response.json()["id"])
    assert (job.type, job.data) == (
        JobType.PREVIEW,
        {"snapshot": snapshot.id, "selection": None, "include_unchanged": True},
    )
    assert len(callbacks) == 1 and not RestorePreview.objects.exists()

    from jobs.runner import run_job
    from snapshots.restore import preview as restore
    from snapshots.restore.runners import PreviewRunner

    class Reader(FakeReader):  # the worker's Channel Access, faked at the io boundary
        def read(self, addresses, timeout=2.0):
            return super().read(addresses, timeout)

        def metadata(self, addresses):
            return {}

    monkeypatch.setattr(restore, "_service", lambda: Reader({"T:A_SP": 0.5, "T:C": 7}))
    run_job(job.pk, PreviewRunner.run)
    job.refresh_from_db()
    preview = RestorePreview.objects.get(pk=job.result_id)
    assert (job.status, preview.live_source, preview.write_count, preview.unchanged_count) == (
        "succeeded",
        "direct",
        2,
        0,
    )
