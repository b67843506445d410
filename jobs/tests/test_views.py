"""The job page: who may follow a job, its progress, its result."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from jobs.models import Job, JobType

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(make_user):
    owner = make_user("operator", "owner")
    return Job.objects.create(type=JobType.SNAPSHOT, created_by=owner, data={"title": "Before MD"})


def test_a_running_job_shows_its_progress_for_the_live_script(client, job):
    client.force_login(job.created_by)
    job.start()
    job.set_progress(40, "Reading the cache")
    page = client.get(reverse("jobs:detail", args=[job.pk])).text
    assert f'data-job-id="{job.pk}" data-job-status="running"' in page
    assert 'value="40"' in page and "Reading the cache" in page and "Before MD" in page
    assert "/static/squirrel/jobs.js" in page


def test_a_succeeded_job_goes_to_what_it_produced(client, job):
    client.force_login(job.created_by)
    job.start()
    job.finish(result_id=7)
    response = client.get(reverse("jobs:detail", args=[job.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("snapshots:detail", args=[7])
    restore = Job.objects.create(type=JobType.RESTORE, created_by=job.created_by)
    restore.start()
    restore.finish(result_id=3)
    assert client.get(reverse("jobs:detail", args=[restore.pk]))["Location"] == reverse("snapshots:restore", args=[3])


def test_a_failed_job_shows_its_error(client, job):
    client.force_login(job.created_by)
    job.fail("No PV matches the selection.")
    page = client.get(reverse("jobs:detail", args=[job.pk])).text
    assert 'id="job-error"' in page and "No PV matches the selection." in page and "data-job-id" not in page


def test_only_its_creator_and_staff_see_a_job(client, job, make_user, admin_user):
    client.force_login(make_user("operator", "other"))
    assert client.get(reverse("jobs:detail", args=[job.pk])).status_code == 404
    client.force_login(admin_user)
    assert client.get(reverse("jobs:detail", args=[job.pk])).status_code == 200


def test_the_job_page_needs_the_permission_to_view_jobs(client, make_user):
    nobody = make_user(None)
    job = Job.objects.create(type=JobType.SNAPSHOT, created_by=nobody)
    client.force_login(nobody)
    assert client.get(reverse("jobs:detail", args=[job.pk])).status_code == 403


def test_the_job_page_needs_a_login(client, job):
    response = client.get(reverse("jobs:detail", args=[job.pk]))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_the_job_page_names_the_job_not_what_it_produces(client, make_user):
    """A restore job's number is not its restore's: the title says "Job #n" and links its preview."""
    owner = make_user("operator", "owner")
    client.force_login(owner)
    job = Job.objects.create(type=JobType.RESTORE, created_by=owner, data={"preview": 41, "verify": True})
    page = client.get(reverse("jobs:detail", args=[job.pk])).text
    assert f"<h1>Job #{job.pk}: Restore</h1>" in page and f"Restore #{job.pk}" not in page
    assert f'<a href="{reverse("snapshots:restore_preview", args=[41])}">Executes preview #41</a>' in page


def _rows(page: str) -> list[int]:
    return [int(job_id) for job_id in re.findall(r'<tr data-job="(\d+)"', page)]


def test_the_jobs_page_lists_who_asked_for_what_and_the_result(client, make_user):
    owner = make_user("operator", "owner")
    snapshot = Job.objects.create(type=JobType.SNAPSHOT, created_by=owner, data={"title": "Shift start"})
    snapshot.start()
    snapshot.finish(result_id=12)
    undo = Job.objects.create(type=JobType.PREVIEW, created_by=owner, data={"undo_of": 5})
    undo.fail("The monitor's cache is empty.")
    client.force_login(owner)
    page = client.get(reverse("jobs:list")).text
    assert _rows(page) == [undo.pk, snapshot.pk]
    assert "“Shift start”" in page and f'<a href="{reverse("snapshots:detail", args=[12])}">Snapshot #12</a>' in page
    assert f'<a href="{reverse("snapshots:restore", args=[5])}">Undo of restore #5</a>' in page
    assert "The monitor&#x27;s cache is empty." in page and "Succeeded" in page and "owner" in page


def test_the_jobs_page_filters_by_kind_state_user_and_day(client, make_user, admin_user):
    alice, bob = make_user("operator", "alice"), make_user("operator", "bob")
    snapshot = Job.objects.create(type=JobType.SNAPSHOT, created_by=alice)
    restore = Job.objects.create(type=JobType.RESTORE, created_by=bob, data={"preview": 1})
    restore.fail("boom")
    old = Job.objects.create(type=JobType.SNAPSHOT, created_by=bob)
    Job.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))
    client.force_login(admin_user)
    url = reverse("jobs:list")
    assert _rows(client.get(url, {"type": "restore"}).text) == [restore.pk]
    assert _rows(client.get(url, {"status": "failed"}).text) == [restore.pk]
    assert _rows(client.get(url, {"user": "BOB"}).text) == [old.pk, restore.pk]
    today = timezone.localdate().isoformat()
    assert _rows(client.get(url, {"date_from": today, "date_to": today}).text) == [restore.pk, snapshot.pk]
    assert _rows(client.get(url, {"status": "", "type": ""}).text) == [old.pk, restore.pk, snapshot.pk]
    bad = client.get(url, {"date_from": "yesterday", "type": "nope"})
    assert bad.status_code == 400 and _rows(bad.text) == []
    assert "Enter a day, YYYY-MM-DD, or a day and a 24-hour time, YYYY-MM-DD HH:MM (time zone " in bad.text


def test_the_jobs_page_filters_by_minute_in_the_configured_time_zone(client, admin_user, settings):
    settings.TIME_ZONE = "Europe/Zurich"
    early, late = (Job.objects.create(type=JobType.SNAPSHOT, created_by=admin_user) for _ in range(2))
    # 2026-12-07 13:30 and 13:31 UTC: 14:30 and 14:31 in Zurich (UTC+1 in December).
    Job.objects.filter(pk=early.pk).update(created_at=datetime(2026, 12, 7, 13, 30, 20, tzinfo=UTC))
    Job.objects.filter(pk=late.pk).update(created_at=datetime(2026, 12, 7, 13, 31, 5, tzinfo=UTC))
    client.force_login(admin_user)
    url = reverse("jobs:list")

    assert _rows(client.get(url, {"date_to": "2026-12-07 14:30"}).text) == [early.pk]  # the whole minute
    assert _rows(client.get(url, {"date_from": "2026-12-07 14:31"}).text) == [late.pk]
    assert _rows(client.get(url, {"date_from": "2026-12-07T14:30:21"}).text) == [late.pk]
    assert _rows(client.get(url, {"date_from": "2026-12-07", "date_to": "2026-12-07"}).text) == [late.pk, early.pk]
    assert _rows(client.get(url, {"date_to": "2026-12-06"}).text) == []
    page = client.get(url, {"date_from": "2026-12-07 2:30 PM"})
    assert page.status_code == 400 and "(time zone Europe/Zurich)" in page.text


def test_the_jobs_page_shows_only_the_jobs_one_may_follow_and_pages_them(client, make_user, admin_user):
    alice, bob = make_user("operator", "alice"), make_user("operator", "bob")
    mine = [Job.objects.create(type=JobType.SNAPSHOT, created_by=alice).pk for _ in range(51)]
    Job.objects.create(type=JobType.SNAPSHOT, created_by=bob)
    client.force_login(alice)
    first = client.get(reverse("jobs:list")).text
    assert _rows(first) == mine[::-1][:50] and 'rel="next"' in first
    assert _rows(client.get(reverse("jobs:list"), {"page": 2}).text) == [mine[0]]
    client.force_login(admin_user)
    assert len(_rows(client.get(reverse("jobs:list")).text)) == 50


def test_the_jobs_page_runs_a_bounded_number_of_queries(client, make_user, django_assert_max_num_queries):
    owner = make_user("operator", "owner")
    for _ in range(30):
        Job.objects.create(type=JobType.SNAPSHOT, created_by=owner)
    client.force_login(owner)
    with django_assert_max_num_queries(8):
        assert client.get(reverse("jobs:list")).status_code == 200
