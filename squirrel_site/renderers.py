"""A JSON renderer for the API's biggest pages (50,000 snapshot values: 25 MB of JSON).

Python's json module took 0.35-0.45 s to write such a page on the development VM; ujson (a
dependency of daphne, through autobahn) takes about a third of that. ujson 5 and later write
every float as its shortest form that reads back to the same number, though not always spelled
as json does ("1e-5" for "1e-05"): a client reads exactly the same numbers, an integral float
still reads as a float ("100.0").
"""

import ujson
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

# What DRF's encoder does for the types JSON lacks (dates, decimals, lazy strings, ...).
_default = JSONEncoder().default


class FastJSONRenderer(JSONRenderer):
    """JSONRenderer's output (compact, or indented when the Accept header asks), written by ujson."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        text = ujson.dumps(
            data,
            ensure_ascii=self.ensure_ascii,
            allow_nan=not self.strict,
            escape_forward_slashes=False,
            indent=self.get_indent(accepted_media_type, renderer_context or {}) or 0,
            default=_default,
        )
        # As JSONRenderer does: U+2028 and U+2029 are valid in JSON strings but end a line in JavaScript.
        return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode()
