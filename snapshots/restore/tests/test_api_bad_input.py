"""Bad input to the snapshot, restore and compare API: wrong types, non-finite numbers, huge lists,
oversize bodies and broken JSON are refused (400, 413 or 415) in the error envelope, and nothing
is stored."""

import io
import json

import pytest
from django.conf import settings as django_settings

from jobs.models import Job
from snapshots.models import RestorePreview, Snapshot, SnapshotTag
from squirrel_site.testing.restore import preview_record

pytestmark = pytest.mark.django_db

TOO_MANY = django_settings.API_MAX_ITEMS + 1


@pytest.fixture
def api(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def snapshot(make_snapshot):
    return make_snapshot("Saved", {"P:A": 1.0})


def post(api, url, body, method="post"):
    """Send `body` (a dict, or JSON text as is) and return (status, the envelope's error)."""
    text = body if isinstance(body, str) else json.dumps(body)
    response = getattr(api, method)(url, text, content_type="application/json")
    assert response["Content-Type"] == "application/json", response.content
    return response.status_code, response.json().get("error")


PARSE_ERROR = "parse_error"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ('{"title": "t",', PARSE_ERROR),
        ('{"title": NaN}', PARSE_ERROR),
        ('{"title": "t", "selection": {"tag": [Infinity]}}', PARSE_ERROR),
        ('{"title": 1e999}', PARSE_ERROR),
        ('{"title": "t", "tags": ["gold\\u0000en"]}', PARSE_ERROR),
        ({"title": ["t"]}, "title"),
        ({"title": "t", "mode": 3}, "mode"),
        ({"title": "t", "tags": {"golden": True}}, "tags"),
        ({"title": "t", "tags": ["x"] * 101}, "tags"),
        ({"title": "t", "selection": ["tag", 3]}, "selection"),
        ({"title": "t", "selection": {"tag": ["x"]}}, "selection.tag.0"),
        ({"title": "t", "selection": {"tag": 3}}, "selection.tag"),
        ({"title": "t", "selection": {"pv": "SIM:A"}}, "selection.pv"),
        ({"title": "t", "selection": {"pv": ["SIM:A"] * TOO_MANY}}, "selection.pv"),
        ({"title": "t", "selection": {"device": {"prefix": "Q"}}}, "selection.device"),
        ({"title": "t", "selection": {"tag_group": "NaN"}}, "selection.tag_group"),
    ],
)
def test_taking_a_snapshot_refuses_bad_input_and_stores_no_job(api, body, problem):
    code, error = post(api, "/api/v1/snapshots/", body)
    assert code == 400
    if problem == PARSE_ERROR:
        assert error["code"] == PARSE_ERROR
    else:
        assert (error["code"], list(error["fields"])) == ("invalid", [problem])
    assert not Job.objects.exists()


def test_a_body_over_the_api_limit_is_413_and_stores_nothing(api, settings):
    settings.API_MAX_BODY_BYTES = 1000
    code, error = post(api, "/api/v1/snapshots/", {"title": "t", "comment": "x" * 1000})
    assert (code, error["code"]) == (413, "request_too_large")
    assert not Job.objects.exists()


def test_a_hundred_thousand_tags_are_refused_without_a_query_each(api, snapshot, django_assert_max_num_queries):
    with django_assert_max_num_queries(5):  # session, user, snapshot and its tags; no tag looked up
        code, error = post(api, f"/api/v1/snapshots/{snapshot.id}/tags/", {"tags": ["t"] * 100_000}, method="put")
    assert (code, error["fields"]["tags"]) == (400, ["Give at most 100 items."])


@pytest.mark.parametrize("body", [{"tags": "golden"}, {"tags": {"golden": 1}}, {"tags": [None]}, '{"tags": [NaN]}'])
def test_retagging_refuses_bad_input_and_keeps_the_tags(api, snapshot, body):
    snapshot.tags.add(SnapshotTag.objects.get(name="golden"))
    code, _ = post(api, f"/api/v1/snapshots/{snapshot.id}/tags/", body, method="put")
    assert code == 400
    assert list(snapshot.tags.values_list("name", flat=True)) == ["golden"]


@pytest.mark.parametrize("name", [{}, 7, ["golden"], True])
def test_a_tag_that_is_not_a_name_says_so(api, snapshot, name):
    code, error = post(api, f"/api/v1/snapshots/{snapshot.id}/tags/", {"tags": [name]}, method="put")
    assert (code, error["fields"]) == (400, {"tags": ["Give a tag's name as a string."]})


def upload(content: bytes, name: str) -> io.BytesIO:
    file = io.BytesIO(content)
    file.name = name
    return file


def test_an_import_without_a_file_is_400(api):
    response = api.post("/api/v1/snapshots/import/", {"title": "t"})
    assert response.status_code == 400 and list(response.json()["error"]["fields"]) == ["file"]


def test_an_import_sent_as_json_is_415(api):
    code, error = post(api, "/api/v1/snapshots/import/", {"file": "snapshot.json"})
    assert (code, error["code"]) == (415, "unsupported_media_type")


def test_an_import_over_the_upload_limit_is_413_and_stores_nothing(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    response = api.post("/api/v1/snapshots/import/", {"file": upload(b"{" + b" " * 5000 + b"}", "big.json")})
    assert response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"
    assert not Snapshot.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"snapshot": "first"}, "snapshot"),
        ({"snapshot": [1]}, "snapshot"),
        ({"snapshot": None}, "snapshot"),
        ({"include_unchanged": "perhaps"}, "include_unchanged"),
        ({"selection": {"colour": "red"}}, "selection"),
        ({"selection": {"tag": [1, "two"]}}, "selection.tag.1"),
    ],
)
def test_a_preview_refuses_bad_input_and_stores_nothing(api, snapshot, body, field):
    code, error = post(api, "/api/v1/restore-previews/", {"snapshot": snapshot.id, **body})
    assert code == 400 and field in error["fields"], error
    assert not RestorePreview.objects.exists() and not Job.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"verify_timeout": "NaN"}, "verify_timeout"),
        ({"verify_timeout": "Infinity"}, "verify_timeout"),
        ({"verify_timeout": "-Infinity"}, "verify_timeout"),
        ({"verify_timeout": -1}, "verify_timeout"),
        ({"verify_timeout": 301}, "verify_timeout"),
        ({"verify_timeout": [5]}, "verify_timeout"),
        ({"verify": "perhaps"}, "verify"),
    ],
)
def test_executing_refuses_bad_options_and_starts_no_job(api, admin_user, snapshot, body, field):
    preview = preview_record(snapshot, admin_user)
    code, error = post(api, f"/api/v1/restore-previews/{preview.id}/execute/", body)
    assert code == 400 and list(error["fields"]) == [field], error
    assert not Job.objects.exists()


def test_executing_refuses_an_overflowing_number_before_validation(api, admin_user, snapshot):
    preview = preview_record(snapshot, admin_user)
    code, error = post(api, f"/api/v1/restore-previews/{preview.id}/execute/", '{"verify_timeout": 1e400}')
    assert (code, error["code"]) == (400, "parse_error")


@pytest.mark.parametrize("value", ["NaN", "nan", "Infinity", "-Infinity", "inf", "1e999"])
def test_compare_refuses_non_finite_tolerances(api, snapshot, value):
    for name in ("abs_tol", "rel_tol"):
        response = api.get("/api/v1/compare/", {"a": snapshot.id, name: value})
        assert response.status_code == 400
        assert response.json()["error"]["fields"] == {name: ["Enter a number."]}


def test_compare_refuses_more_query_fields_than_django_reads(api, snapshot):
    response = api.get("/api/v1/compare/", {"a": snapshot.id, "pv": ["P:A"] * 10_001})
    assert response.status_code == 400 and response.json()["error"]["code"] == "bad_request"


def test_an_address_with_a_percent_sign_is_a_field_error(api, snapshot):
    response = api.get("/api/v1/compare/", {"a": snapshot.id, "pv": "P:%s%d"})
    assert response.status_code == 400 and "'P:%s%d'" in response.json()["error"]["fields"]["pv"][0]


def test_restore_items_refuse_an_unknown_status(api, admin_user, snapshot):
    from snapshots.models import Restore

    restore = Restore.objects.create(
        preview=preview_record(snapshot, admin_user), snapshot=snapshot, created_by=admin_user
    )
    response = api.get(f"/api/v1/restores/{restore.id}/items/", {"status": "AAA"})
    assert response.status_code == 400 and list(response.json()["error"]["fields"]) == ["status"]


def test_snapshots_taken_after_a_time_with_any_utc_offset_are_found(api, snapshot):
    # PostgreSQL takes offsets up to 15:59; ISO 8601 allows up to 23:59.
    response = api.get("/api/v1/snapshots/", {"created_after": "2000-01-01T00:00:00+20:52"})
    assert response.status_code == 200 and [s["id"] for s in response.json()["results"]] == [snapshot.id]


def test_a_time_that_leaves_the_calendar_in_utc_is_a_field_error(api):
    response = api.get("/api/v1/snapshots/", {"created_before": "0001-01-01T00:00:00+20:00"})
    assert response.status_code == 400 and list(response.json()["error"]["fields"]) == ["created_before"]
