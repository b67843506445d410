import pytest

from jobs.models import Job, JobType


@pytest.fixture
def operator(db, make_user):
    return make_user("operator", "op")


def test_a_user_reads_their_job(client, operator):
    job = Job.objects.create(type=JobType.RESTORE, created_by=operator, data={"preview": 3})
    client.force_login(operator)
    body = client.get(f"/api/v1/jobs/{job.id}/").json()
    assert (body["status"], body["type"], body["data"], body["created_by"]) == (
        "pending",
        "restore",
        {"preview": 3},
        "op",
    )


def test_other_users_jobs_are_not_found(client, operator, admin_user):
    job = Job.objects.create(type=JobType.RESTORE, created_by=admin_user)
    client.force_login(operator)
    assert client.get(f"/api/v1/jobs/{job.id}/").status_code == 404
    assert client.get("/api/v1/jobs/").json()["results"] == []


def test_staff_see_every_job(client, operator, admin_user):
    Job.objects.create(type=JobType.RESTORE, created_by=operator)
    client.force_login(admin_user)
    assert len(client.get("/api/v1/jobs/").json()["results"]) == 1


def test_the_admin_role_sees_every_job_without_staff_status(client, operator, admin_role_user):
    Job.objects.create(type=JobType.RESTORE, created_by=operator)
    client.force_login(admin_role_user)
    assert len(client.get("/api/v1/jobs/").json()["results"]) == 1


def test_operators_see_only_their_own_jobs(client, operator, make_user):
    Job.objects.create(type=JobType.SNAPSHOT, created_by=make_user("operator", "colleague"))
    mine = Job.objects.create(type=JobType.SNAPSHOT, created_by=operator)
    client.force_login(operator)
    assert [job["id"] for job in client.get("/api/v1/jobs/").json()["results"]] == [mine.id]


def test_a_user_without_a_role_reads_no_jobs_not_even_their_own(client, make_user):
    nobody = make_user(None)
    Job.objects.create(type=JobType.SNAPSHOT, created_by=nobody)
    client.force_login(nobody)
    assert client.get("/api/v1/jobs/").status_code == 403


def test_anonymous_is_asked_to_authenticate(client, db):
    response = client.get("/api/v1/jobs/")
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"
