"""Reading what clients send: uploaded files, JSON from request bodies, files and WebSocket
messages, and query strings. Odd or hostile input becomes a readable error here (a ValueError with
a message for the person who sent it), never a crash further in.

Two things fail late and loudly when they get through: PostgreSQL stores no NUL character in text
or jsonb (a DataError, a 500, wherever one reaches a query), and Python's JSON parser recurses once
per level of nesting (a RecursionError, a 500, for a few kilobytes of "[[[[").
"""

import json
import re

from django.http import HttpResponseBadRequest
from django.template.loader import render_to_string

from squirrel_site.errors import API_PREFIX, error_response

NUL = "\x00"
NUL_MESSAGE = "contains a NUL character (0x00), which text here may not hold"
# A \u0000 escape (not an escaped backslash followed by "u0000"): how JSON text carries NUL.
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


class TextError(ValueError):
    """An uploaded file that is not text Squirrel can store: `line` is where (1-based), or None."""

    def __init__(self, line: int | None, message: str):
        super().__init__(message)
        self.line = line
        self.message = message


def decode_text(content: bytes | str) -> str:
    """The text of an uploaded file: UTF-8 with or without a byte-order mark (Excel writes one),
    and no NUL character anywhere. Raises TextError naming the line of the first bad byte."""
    if isinstance(content, bytes):
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            line = content[: error.start].count(b"\n") + 1
            raise TextError(
                line, f"Not UTF-8 text (byte 0x{content[error.start]:02x}); save the file as UTF-8."
            ) from None
    else:
        text = content.removeprefix("\ufeff")
    position = text.find(NUL)
    if position != -1:
        raise TextError(text.count("\n", 0, position) + 1, f"The file {NUL_MESSAGE}.")
    return text


def _no_constant(name: str):
    raise ValueError(f'{name} is not JSON; write "{name}" as a string')


def parse_json(text: str, **options):
    """Strict JSON (no NaN or Infinity tokens, no NUL in strings) from an untrusted source.

    Nesting deeper than Python's parser can follow (about 1,000 levels, less on a deep call stack)
    is refused like any other malformed input. Every refusal is a ValueError (json.JSONDecodeError
    for malformed text, with its line) whose message can be shown to the sender. `options` go to
    json.loads (parse_float, for instance).
    """
    _refuse_nul_escape(text)
    try:
        return json.loads(text, parse_constant=_no_constant, **options)
    except RecursionError:
        raise ValueError(_TOO_DEEP) from None


def parse_json_prefix(text: str) -> int:
    """Where the JSON value that `text` starts with ends (text may go on after it), checked as
    parse_json checks a whole text."""
    _refuse_nul_escape(text)
    try:
        return _PREFIX_DECODER.raw_decode(text)[1]
    except RecursionError:
        raise ValueError(_TOO_DEEP) from None


_TOO_DEEP = "nested too deeply"
_PREFIX_DECODER = json.JSONDecoder(parse_constant=_no_constant)


def _refuse_nul_escape(text: str) -> None:
    if _NUL_ESCAPE.search(text):
        raise ValueError("text may not contain NUL characters (\\u0000)")


def query_has_nul(query) -> bool:
    """Whether a request's query parameters (a QueryDict), names or values, hold a NUL character."""
    return any(NUL in key or any(NUL in value for value in values) for key, values in query.lists())


class RefuseNulQueryMiddleware:
    """Answers 400 to any request whose query string holds a NUL character (%00), before a view or
    an admin list filter passes it to PostgreSQL. No URL of Squirrel takes one: addresses, names
    and searches cannot contain it. The API answers with its error envelope, pages with a page.
    """

    message = f"The query string {NUL_MESSAGE}."

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if query_has_nul(request.GET):
            return bad_request_response(request, self.message)
        return self.get_response(request)


def bad_request_response(request, message: str):
    """400 for a request refused before any view: the envelope under /api/, else a short page."""
    if request.path_info.startswith(API_PREFIX):
        return error_response(400, "bad_request", message)
    return HttpResponseBadRequest(render_to_string("squirrel/400.html", {"message": message}))
