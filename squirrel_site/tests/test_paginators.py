"""The API's cursor pages (squirrel_site.paginators.IdCursorPagination)."""

import base64

import pytest
from django.urls import URLResolver, get_resolver
from rest_framework.pagination import CursorPagination

from jobs.models import Job, JobType
from snapshots.models import Snapshot
from squirrel_site.paginators import IdCursorPagination

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


def _paginated_views(patterns):
    """(route, pagination class) of every view under /api/v1/, an action's own class included."""
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _paginated_views(pattern.url_patterns)
            continue
        view = pattern.callback
        cls = getattr(view, "cls", None)
        pagination = getattr(view, "initkwargs", {}).get("pagination_class", getattr(cls, "pagination_class", None))
        yield str(pattern.pattern), pagination


def test_every_cursor_paged_api_list_refuses_crafted_cursors_and_bad_page_sizes():
    # A plain CursorPagination trusts the position a cursor carries (a 500) and ignores a bad page_size.
    paginators = dict(_paginated_views(get_resolver("squirrel_site.api_urls").url_patterns))
    cursor_paged = {route: cls for route, cls in paginators.items() if cls and issubclass(cls, CursorPagination)}
    assert {"^pvs/$", "^tags/$", "^snapshots/$"} <= cursor_paged.keys()
    assert {route for route, cls in cursor_paged.items() if not issubclass(cls, IdCursorPagination)} == set()
