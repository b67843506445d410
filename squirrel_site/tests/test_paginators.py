"""The API's cursor pages (squirrel_site.paginators.IdCursorPagination)."""

import base64

import pytest

from jobs.models import Job, JobType
from snapshots.models import Snapshot

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(client, admin_user):
    client.force_login(admin_user)
    Job.objects.bulk_create(Job(type=JobType.SNAPSHOT, created_by=admin_user) for _ in range(3))
    return client


def cursor(query: bytes) -> str:
    return base64.b64encode(query).decode()


def test_a_crafted_cursor_whose_position_is_not_an_id_is_404(api):
    response = api.get("/api/v1/jobs/", {"cursor": cursor(b"p=abc")})
    assert response.status_code == 404 and response.json()["error"]["message"] == "Invalid cursor"


def test_a_cursor_beyond_the_range_of_ids_pages_from_there(api):
    # Newest first: every job's id is below a position no bigint can hold.
    response = api.get("/api/v1/jobs/", {"cursor": cursor(b"p=99999999999999999999999999")})
    assert response.status_code == 200 and len(response.json()["results"]) == 3


@pytest.mark.parametrize("size", ["0", "-1", "ten", "1.5"])
def test_a_page_size_that_is_not_a_positive_integer_is_400(api, size):
    response = api.get("/api/v1/snapshots/", {"page_size": size})
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"page_size": ["Enter a positive integer."]}


def test_an_empty_page_size_is_the_default(api, admin_user):
    Snapshot.objects.bulk_create(Snapshot(title=f"S{n}", created_by=admin_user, mode="cache") for n in range(3))
    assert len(api.get("/api/v1/snapshots/", {"page_size": ""}).json()["results"]) == 3
    assert len(api.get("/api/v1/snapshots/", {"page_size": "2"}).json()["results"]) == 2
