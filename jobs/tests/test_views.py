"""The job page: who may follow a job, its progress, its result."""

import pytest
from django.urls import reverse

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
