"""Asking for a snapshot from the archive, without an IOC or archiver: the take form and the API
accept mode archive with a time and record it in the job; they refuse, with the field's error and
no job, a missing, future, zone-less or hostile time and a time with no archiver configured; the
snapshot page says "as archived at T" and each value's sample age."""

from datetime import UTC, datetime

import pytest
from django.conf import settings
from django.urls import reverse

from jobs.models import Job
from pvs.models import PV
from snapshots.capture.models import SnapshotMode
from snapshots.capture.services import save_snapshot
from snapshots.capture.values import ARCHIVE_ROW_COLUMNS, pv_row
from snapshots.comparison.drift import drift_summary
from squirrel_site.epics_values import Value

pytestmark = pytest.mark.django_db

T = "2026-03-01 02:00:00"


@pytest.fixture
def operator(client, make_user, monkeypatch):
    """A signed-in operator, one PV, and an archiver configured (never asked: nothing here runs a
    job); set on the settings themselves, as redis_db checks SETTINGS_MODULE, which an override hides."""
    monkeypatch.setattr(settings, "ARCHIVERS", [("main", "http://127.0.0.1:9")])
    PV.objects.create(setpoint_address="T:A")
    user = make_user("operator", "op")
    client.force_login(user)
    return user


def test_the_take_form_records_the_mode_and_the_time_in_the_job(client, operator):
    response = client.post(reverse("snapshots:list"), {"take-title": "At 2", "take-mode": "archive", "take-at": T})
    job = Job.objects.get()
    assert response.status_code == 302, response.content.decode()[:3000]
    # A time without an offset is the server's time zone's (settings.TIME_ZONE, UTC here).
    assert (job.data["mode"], job.data["at"]) == ("archive", "2026-03-01T02:00:00+00:00")


def test_the_api_takes_mode_archive_with_a_time(client, operator):
    response = client.post(
        "/api/v1/snapshots/",
        {"title": "At 2", "mode": "archive", "at": "2026-03-01T03:00:00+01:00"},
        content_type="application/json",
    )
    assert response.status_code == 202, response.json()
    assert Job.objects.get().data["at"] == "2026-03-01T02:00:00+00:00"


FUTURE = "2999-01-01 00:00:00"


@pytest.mark.parametrize(
    ("mode", "at", "error"),
    [
        ("archive", "", "needs the time it is of"),
        ("archive", FUTURE, "is in the future"),
        ("archive", "1969-07-20 20:17:00", "before 1990"),
        ("cache", T, "for a snapshot from the archive only"),
        ("archive", '=HYPERLINK("http://x")', "Enter a valid date/time."),
        ("archive", "2026-03-01 02:00:00\x00", "Enter a valid date/time."),
        ("archive", "2026-02-30 02:00:00", "Enter a valid date/time."),
        ("archive", "9" * 100_000, "Enter a valid date/time."),
        ("archive", "yesterday", "Enter a valid date/time."),
    ],
)
def test_a_bad_time_is_a_form_error_and_no_job(client, operator, mode, at, error):
    response = client.post(reverse("snapshots:list"), {"take-title": "t", "take-mode": mode, "take-at": at})
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    ("at", "error"),
    [
        (None, "needs the time it is of"),
        ("2999-01-01T00:00:00Z", "is in the future"),
        ("not a time", "Datetime has wrong format"),
        ({"$gt": ""}, "Datetime has wrong format"),
    ],
)
def test_a_bad_time_is_400_with_the_field_and_no_job(client, operator, at, error):
    body = {"title": "t", "mode": "archive"} | ({} if at is None else {"at": at})
    response = client.post("/api/v1/snapshots/", body, content_type="application/json")
    assert response.status_code == 400, response.json()
    assert list(response.json()["error"]["fields"]) == ["at"] and error in str(response.json())
    assert not Job.objects.exists()


def test_a_nul_in_the_time_is_400_and_no_job(client, operator):
    body = {"title": "t", "mode": "archive", "at": "2026-03-01T02:00:00Z\u0000"}
    assert client.post("/api/v1/snapshots/", body, content_type="application/json").status_code == 400
    assert not Job.objects.exists()


def test_no_archiver_configured_is_refused_on_the_form_and_in_the_api(client, operator, monkeypatch):
    monkeypatch.setattr(settings, "ARCHIVERS", [])
    response = client.post(reverse("snapshots:list"), {"take-title": "t", "take-mode": "archive", "take-at": T})
    assert response.status_code == 400 and "No archiver is configured" in response.content.decode()
    response = client.post(
        "/api/v1/snapshots/", {"title": "t", "mode": "archive", "at": T}, content_type="application/json"
    )
    assert response.status_code == 400 and "No archiver is configured" in str(response.json())
    assert not Job.objects.exists()


def archived_snapshot(user, at: datetime):
    """A snapshot from the archive as take_snapshot writes one: T:A archived 12 minutes before
    `at` by "main" (1.5), T:GONE not archived."""
    pv = PV.objects.get()
    sample = Value("T:A", "float", 1.5, timestamp=at.timestamp() - 720, received=at.timestamp() - 720)
    rows = [
        (*pv_row(pv.id, "T:A", "", sample, None, None, "archive", at.timestamp()), "main"),
        (*pv_row(None, "T:GONE", "", None, None, None, "archive", at.timestamp(), "not archived by any of: main"), ""),
    ]
    return save_snapshot(
        title="At 2",
        comment="",
        created_by=user,
        mode=SnapshotMode.ARCHIVE,
        origin="manual",
        tags=[],
        rows=rows,
        archived_at=at,
        columns=ARCHIVE_ROW_COLUMNS,
    )


def test_the_snapshot_page_says_as_archived_at_and_each_sample_age(client, operator):
    at = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    snapshot = archived_snapshot(operator, at)
    page = client.get(reverse("snapshots:detail", args=[snapshot.pk])).content.decode()
    assert "As archived at" in page and "2026-03-01 02:00:00" in page
    assert "12 min old" in page and "1 not archived at that time" in page
    assert "not archived by any of: main" in page
    values = client.get(f"/api/v1/snapshots/{snapshot.pk}/values/").json()["results"]
    assert [(v["pv_name"], v["source"], v["archiver"], v["age"]) for v in values] == [
        ("T:A", "archive", "main", 720.0),
        ("T:GONE", "archive", "", None),
    ]
    listed = client.get(reverse("snapshots:list")).content.decode()
    assert "as archived at" in listed
    detail = client.get(f"/api/v1/snapshots/{snapshot.pk}/").json()
    assert (detail["mode"], detail["archived_at"]) == ("archive", "2026-03-01T02:00:00Z")


def test_the_machine_drifts_against_a_snapshot_from_the_archive(client, operator, cache):
    snapshot = archived_snapshot(operator, datetime(2026, 3, 1, 2, 0, tzinfo=UTC))
    cache({"T:A": 2.5})
    summary = drift_summary(snapshot)
    assert summary.totals.out_of_tolerance == 1
    cache({"T:A": 1.5})
    assert drift_summary(snapshot).totals.out_of_tolerance == 0
