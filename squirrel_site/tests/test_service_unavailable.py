"""PostgreSQL unreachable: pages and the API answer 503 with Retry-After, never 500."""

import pytest
from django.db import connection

from squirrel_site.errors import RETRY_AFTER


@pytest.fixture
def database_down(django_db_blocker):
    """The default connection pointed at a port where no PostgreSQL listens (a real refused
    connection, not a mock), restored afterwards."""
    with django_db_blocker.unblock():
        connection.close()
        port = connection.settings_dict["PORT"]
        connection.settings_dict["PORT"] = 1
        # With SQUIRREL_DB_POOL=1 the pool keeps the address it was made with: make it again.
        connection.close_pool()
        try:
            yield
        finally:
            connection.close()
            connection.close_pool()
            connection.settings_dict["PORT"] = port


@pytest.mark.parametrize("url", ["/api/v1/pvs/", "/api/v1/snapshots/", "/api/v1/jobs/1/"])
def test_the_api_answers_503_with_the_envelope_and_retry_after(client, database_down, url):
    response = client.get(url, HTTP_AUTHORIZATION="Token sqt_anything")

    assert response.status_code == 503
    assert response["Retry-After"] == str(RETRY_AFTER)
    error = response.json()["error"]
    assert (error["status"], error["code"]) == (503, "service_unavailable")
    assert "database is unreachable" in error["message"]


@pytest.mark.parametrize("url", ["/snapshots/", "/accounts/login/", "/admin/"])
def test_pages_answer_a_readable_503_with_retry_after(client, database_down, url):
    client.cookies["sessionid"] = "a-session-the-database-would-hold"

    response = client.get(url)

    assert response.status_code == 503
    assert response["Retry-After"] == str(RETRY_AFTER)
    page = response.content.decode()
    assert "Squirrel is unavailable for a moment" in page and "database is unreachable" in page
    assert "Traceback" not in page


def test_a_form_post_answers_503_too(client, database_down):
    response = client.post("/accounts/login/", {"username": "admin", "password": "x"})

    assert response.status_code == 503
