"""How much one API request may carry: JSON shape, list lengths (docs/api.md, "Limits").

Body sizes, for every route, are squirrel_site/request_limits.py's; a JSON body is also limited
while it is parsed (settings.API_MAX_BODY_BYTES). Lists inside a body hold at most
settings.API_MAX_ITEMS items (SQUIRREL_API_MAX_ITEMS, 50,000, the largest registry a request may
name), fewer where each item costs a query. Ids in a body fit a bigint primary key (`id_field`).
"""

import codecs
import math

from django.conf import settings
from django.core.validators import MaxLengthValidator
from django.db import models
from django.utils.translation import ngettext
from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from squirrel_site.errors import RequestTooLarge, too_large_message
from squirrel_site.untrusted import parse_json


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        # 1e999 reads as infinity, which strict JSON cannot carry back and PostgreSQL's jsonb refuses.
        raise ValueError(f"the number {text} is out of range")
    return value


class StrictJSONParser(JSONParser):
    """DRF's strict JSON parser (no NaN or Infinity tokens) that also refuses numbers too large for
    a float, nesting too deep for Python's parser (a RecursionError would be a 500), strings with
    NUL characters (PostgreSQL stores no NUL in text or jsonb: a 500 wherever one reached it), and
    bodies over the API limit even when no Content-Length announced them."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.API_MAX_BODY_BYTES
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            raise RequestTooLarge(too_large_message(limit))
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return parse_json(codecs.decode(raw, encoding), parse_float=_finite)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None


def id_field(**kwargs) -> serializers.IntegerField:
    """An object's id in a request body that the view looks up itself (one query for many ids): a
    positive integer that a bigint primary key can hold. A larger one would reach PostgreSQL and
    fail there (a 500); Django's own lookups (a URL's id, a PrimaryKeyRelatedField) guard themselves."""
    return serializers.IntegerField(min_value=1, max_value=models.BigIntegerField.MAX_BIGINT, **kwargs)


def too_many_items_message(limit: int) -> str:
    return ngettext("Give at most %(limit)d item.", "Give at most %(limit)d items.", limit) % {"limit": limit}


def refuse_too_many(data, max_length: int | None) -> None:
    """Refuse a list of more than `max_length` items before any of them is validated or looked up:
    the one check of every capped list in a request, a field (CappedListField,
    CappedManyRelatedField) or a whole body (a `many=True` serializer's `max_length`)."""
    if max_length is not None and isinstance(data, list) and len(data) > max_length:
        raise serializers.ValidationError(too_many_items_message(max_length), code="max_length")


class CappedListField(serializers.ListField):
    """A ListField that refuses more than `max_length` items before validating any of them."""

    def to_internal_value(self, data):
        refuse_too_many(data, self.max_length)
        return super().to_internal_value(data)


class CappedManyRelatedField(serializers.ManyRelatedField):
    """A `many=True` relation that takes a JSON list only, and refuses more than `max_length`
    items before looking any up (DRF looks each one up with its own query)."""

    def __init__(self, *, max_length: int, **kwargs):
        self.max_length = max_length
        super().__init__(**kwargs)
        # Also a validator, so that the schema states the limit (maxItems).
        self.validators.append(MaxLengthValidator(max_length, too_many_items_message(max_length)))

    def to_internal_value(self, data):
        # DRF takes anything iterable, so {"golden": 1} would read as ["golden"].
        if not isinstance(data, list):
            self.fail("not_a_list", input_type=type(data).__name__)
        refuse_too_many(data, self.max_length)
        return super().to_internal_value(data)


class SentLengthCharField(serializers.CharField):
    """A CharField whose max_length holds for the text as sent: DRF checks it after trimming
    surrounding whitespace, so " " + 200 characters passed a 200-character limit that the schema
    (maxLength) states for the request. Stored values are trimmed as before."""

    def to_internal_value(self, data):
        if self.max_length is not None and isinstance(data, str) and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().to_internal_value(data)


class ModelSerializer(serializers.ModelSerializer):
    """The project's ModelSerializer: model text fields check their length as sent (SentLengthCharField)."""

    serializer_field_mapping = {**serializers.ModelSerializer.serializer_field_mapping}
    serializer_field_mapping[models.CharField] = SentLengthCharField
