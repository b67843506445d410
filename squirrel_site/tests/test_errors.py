"""The API's one error format (squirrel_site/errors.py), whoever answers the error."""

import pytest
from django.test import Client

from squirrel_site.errors import error_body, flatten_errors


def envelope(response) -> dict:
    assert response["Content-Type"] == "application/json", response.content
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"status", "code", "message", "fields"}, body
    assert body["error"]["status"] == response.status_code
    return body["error"]


@pytest.fixture
def api(client, admin_user):
    client.force_login(admin_user)
    return client


def test_nested_serializer_errors_flatten_to_dotted_paths():
    detail = {"items": [{}, {}, {}, {"abs_tolerance": ["A valid number is required."]}], "title": ["Required."]}
    assert flatten_errors(detail) == {"items.3.abs_tolerance": ["A valid number is required."], "title": ["Required."]}


def test_list_field_errors_are_keyed_by_the_item_index():
    assert flatten_errors({"selection": {"tag": {1: ["A valid integer is required."]}}}) == {
        "selection.tag.1": ["A valid integer is required."]
    }


def test_errors_of_a_nested_object_as_a_whole_belong_to_its_path():
    assert flatten_errors({"selection": {"non_field_errors": ["Unknown filters: colour."]}}) == {
        "selection": ["Unknown filters: colour."]
    }


def test_errors_of_the_whole_request_are_non_field_errors():
    assert flatten_errors(["Preview #3 has expired."]) == {"non_field_errors": ["Preview #3 has expired."]}
    assert flatten_errors({"__all__": ["Pick one."]}) == {"non_field_errors": ["Pick one."]}


def test_an_invalid_request_names_its_first_problem_and_counts_the_others(api):
    response = api.post("/api/v1/snapshots/", {"mode": "sometimes"}, content_type="application/json")
    error = envelope(response)
    assert (response.status_code, error["code"]) == (400, "invalid")
    assert error["message"] == "title: This field is required. (and 1 more)"
    assert set(error["fields"]) == {"title", "mode"}


def test_anonymous_is_401_with_the_envelope_and_the_token_challenge(client, db):
    response = client.get("/api/v1/snapshots/")
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"
    expected = error_body(401, "not_authenticated", "Authentication credentials were not provided.")
    assert envelope(response) == expected["error"]


def test_an_unknown_api_url_is_a_json_404(api):
    response = api.get("/api/v1/no-such-thing/")
    assert response.status_code == 404 and envelope(response)["code"] == "not_found"


def test_an_unknown_page_url_stays_an_html_404(api):
    response = api.get("/no-such-page/")
    assert response.status_code == 404 and not response["Content-Type"].startswith("application/json")


def test_a_method_the_endpoint_lacks_is_405_with_allow(api):
    response = api.delete("/api/v1/jobs/")
    assert response.status_code == 405 and envelope(response)["code"] == "method_not_allowed"
    assert response["Allow"] == "GET, HEAD, OPTIONS"


@pytest.mark.parametrize("debug", [False, True])
def test_a_crash_is_a_json_500_with_no_traceback(admin_user, settings, monkeypatch, debug):
    from jobs.api.views import JobViewSet

    settings.DEBUG = debug

    def crash(self, request, *args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(JobViewSet, "list", crash)
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    response = client.get("/api/v1/jobs/")
    assert response.status_code == 500
    assert envelope(response)["code"] == "server_error"
    assert b"secret" not in response.content and b"Traceback" not in response.content


def test_malformed_json_is_a_400_parse_error(api):
    response = api.post("/api/v1/snapshots/", "{title", content_type="application/json")
    error = envelope(response)
    assert (response.status_code, error["code"]) == (400, "parse_error")
    assert error["message"].startswith("JSON parse error")


def test_a_form_body_is_415(api):
    response = api.post("/api/v1/snapshots/", {"title": "t"})  # multipart, the test client's default
    assert response.status_code == 415 and envelope(response)["code"] == "unsupported_media_type"


def test_a_session_write_without_its_csrf_token_is_403(admin_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    response = client.post("/api/v1/snapshots/", {"title": "t"}, content_type="application/json")
    error = envelope(response)
    assert (response.status_code, error["code"]) == (403, "permission_denied")
    assert "CSRF" in error["message"]


def test_a_token_write_needs_no_csrf_token(admin_user, django_capture_on_commit_callbacks):
    from knox.models import AuthToken

    _, token = AuthToken.objects.create(user=admin_user)
    client = Client(enforce_csrf_checks=True)
    with django_capture_on_commit_callbacks():
        response = client.post(
            "/api/v1/snapshots/", {"title": "t"}, content_type="application/json", HTTP_AUTHORIZATION=f"Token {token}"
        )
    assert response.status_code == 202
