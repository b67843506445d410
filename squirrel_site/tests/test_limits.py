"""Request limits (squirrel_site/limits.py): body size, strict JSON, capped lists."""

import io
import json

import pytest
from django.test import RequestFactory
from rest_framework import serializers
from rest_framework.exceptions import ParseError

from squirrel_site.errors import RequestTooLarge
from squirrel_site.limits import CappedListField, CappedManyRelatedField, SentLengthCharField, StrictJSONParser
from squirrel_site.request_limits import RequestBodySizeMiddleware


class Unreadable(io.RawIOBase):
    """A request body that fails the test if anything reads it."""

    def read(self, *args):
        pytest.fail("the body was read")


def through_middleware(content_type: str, length: int | str, path: str = "/api/v1/snapshots/"):
    request = RequestFactory().post(path, content_type=content_type)
    request.META["CONTENT_LENGTH"] = str(length)
    request._stream = Unreadable()
    return RequestBodySizeMiddleware(lambda request: "answered")(request)


def parse(text: str):
    return StrictJSONParser().parse(io.BytesIO(text.encode()), "application/json", {})


def test_a_json_body_over_the_limit_is_413_before_it_is_read(settings):
    settings.API_MAX_BODY_BYTES = 1000
    response = through_middleware("application/json", 1001)
    error = json.loads(response.content)["error"]
    assert (response.status_code, error["code"]) == (413, "request_too_large")
    assert "1000 bytes" in error["message"]


def test_a_json_body_at_the_limit_goes_through(settings):
    settings.API_MAX_BODY_BYTES = 1000
    assert through_middleware("application/json", 1000) == "answered"


def test_the_import_keeps_the_larger_upload_limit(settings):
    settings.API_MAX_BODY_BYTES, settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000, 5000
    path = "/api/v1/snapshots/import/"
    assert through_middleware("multipart/form-data; boundary=x", 4000, path=path) == "answered"
    assert through_middleware("multipart/form-data; boundary=x", 5001, path=path).status_code == 413


def test_pages_are_not_limited_by_the_api_limit(settings):
    settings.API_MAX_BODY_BYTES = 1000
    assert through_middleware("application/x-www-form-urlencoded", 2000, path="/admin/pvs/pv/add/") == "answered"


@pytest.mark.parametrize("length", ["lots", "-5", "1e3"])
def test_a_content_length_that_is_not_a_number_of_bytes_is_400(length):
    response = through_middleware("application/json", length)
    assert response.status_code == 400 and "Content-Length" in json.loads(response.content)["error"]["message"]


def test_a_body_without_a_content_length_is_limited_while_parsed(settings):
    settings.API_MAX_BODY_BYTES = 10
    with pytest.raises(RequestTooLarge):
        parse('{"title": "longer than ten bytes"}')


@pytest.mark.parametrize("text", ['{"abs_tol": NaN}', '{"abs_tol": Infinity}', '{"abs_tol": -Infinity}', "[1e999]"])
def test_non_finite_numbers_are_a_parse_error(text):
    with pytest.raises(ParseError):
        parse(text)


def test_nul_characters_are_a_parse_error():
    with pytest.raises(ParseError, match="NUL"):
        parse('{"tags": ["a\\u0000b"]}')


def test_an_escaped_backslash_before_u0000_is_plain_text():
    assert parse('{"title": "C:\\\\u0000"}') == {"title": "C:\\u0000"}


def test_nesting_too_deep_for_the_parser_is_a_parse_error():
    with pytest.raises(ParseError, match="nested too deeply"):
        parse("[" * 100_000 + "]" * 100_000)


def test_a_capped_list_refuses_before_validating_any_item():
    class Strict(serializers.IntegerField):
        def to_internal_value(self, data):
            pytest.fail("an item was validated")

    field = CappedListField(child=Strict(), max_length=3)
    with pytest.raises(serializers.ValidationError, match="Give at most 3 items."):
        field.run_validation([1, 2, 3, 4])


@pytest.mark.django_db
def test_a_capped_relation_refuses_before_looking_up_any_item(django_assert_num_queries):
    from snapshots.models import SnapshotTag

    field = CappedManyRelatedField(
        child_relation=serializers.SlugRelatedField(slug_field="name", queryset=SnapshotTag.objects.all()), max_length=2
    )
    with django_assert_num_queries(0), pytest.raises(serializers.ValidationError, match="at most 2 items"):
        field.run_validation(["a", "b", "c"])


@pytest.mark.parametrize("data", [{"golden": 1}, "golden"])
def test_a_capped_relation_takes_a_list_only(data):
    field = CappedManyRelatedField(
        child_relation=serializers.SlugRelatedField(slug_field="name", read_only=True), max_length=2
    )
    with pytest.raises(serializers.ValidationError, match="Expected a list"):
        field.run_validation(data)


def test_a_text_field_counts_its_length_as_sent_before_trimming():
    field = SentLengthCharField(max_length=5)

    assert field.run_validation(" abc ") == "abc"
    with pytest.raises(serializers.ValidationError, match="no more than 5"):
        field.run_validation("\u00a0abcde")
