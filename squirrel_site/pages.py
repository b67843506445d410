"""What the server-rendered pages share: pages of rows without COUNT, links that keep the query,
and the day-and-time fields of their filter forms.

Tables of 50,000 rows are paged by offset, bounded (MAX_PAGE) and with one extra row fetched to
know whether a next page exists: no COUNT(*) of the whole table on every page view.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.http import QueryDict
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field

PAGE_SIZE = 100
# 2,000 pages of 100 rows: past every snapshot's end; bounds the OFFSET a link can ask for.
MAX_PAGE = 2000


def with_query(query: QueryDict, **changes) -> str:
    """`?query` with the given parameters replaced (None removes one): links keep the filters."""
    params = query.copy()
    for name, value in changes.items():
        params.pop(name, None)
        if value is not None:
            params[name] = value
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else "?"


def page_number(query: QueryDict) -> int:
    """The `page` parameter, 1 if it is missing or not a number, at most MAX_PAGE."""
    try:
        number = int(query.get("page", 1))
    except ValueError:
        return 1
    return min(max(number, 1), MAX_PAGE)


@dataclass
class Page:
    """One page of rows; `count` is known only when it was cheap (None otherwise)."""

    rows: list
    number: int
    size: int
    has_next: bool
    query: QueryDict
    count: int | None = None

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def start(self) -> int:
        """1-based index of the first row on this page."""
        return (self.number - 1) * self.size + 1

    @property
    def end(self) -> int:
        return self.start + len(self.rows) - 1

    @property
    def previous_url(self) -> str:
        return with_query(self.query, page=self.number - 1 if self.number > 2 else None)

    @property
    def next_url(self) -> str:
        return with_query(self.query, page=self.number + 1)

    @property
    def first_url(self) -> str:
        return with_query(self.query, page=None)

    @property
    def last_number(self) -> int | None:
        return None if self.count is None else max(1, -(-self.count // self.size))


def offset_page(query: QueryDict, rows, *, size: int = PAGE_SIZE, count: int | None = None) -> Page:
    """The page of `rows` (an ordered queryset) that `query` asks for, fetching size + 1 rows."""
    number = page_number(query)
    offset = (number - 1) * size
    fetched = list(rows[offset : offset + size + 1])
    return Page(fetched[:size], number, size, len(fetched) > size, query, count)


@dataclass
class SortColumn:
    """A table header that sorts by `key` (ascending, then descending on a second click)."""

    label: str
    key: str
    url: str = ""
    active: bool = False
    descending: bool = False


def sort_columns(query: QueryDict, current: str, columns: list[tuple[str, str]]) -> dict[str, SortColumn]:
    """Header links for `columns` ((key, label) pairs), by key; `current` is e.g. "name" or "-name"."""
    result = {}
    for key, label in columns:
        active = current.lstrip("-") == key
        descending = active and current.startswith("-")
        target = key if not active or descending else f"-{key}"
        result[key] = SortColumn(label, key, with_query(query, sort=target, page=None), active, descending)
    return result


# Days and times typed in the pages' filter forms: ISO, 24-hour, in the configured time zone
# (SQUIRREL_TIME_ZONE), never the browser's locale (an <input type=date> shows mm/dd/yyyy, and
# datetime-local a 12-hour clock, in en-US). Each text spans a day, a minute or a second.
MOMENT_FORMATS = {
    "%Y-%m-%d": timedelta(days=1),
    "%Y-%m-%d %H:%M": timedelta(minutes=1),
    "%Y-%m-%dT%H:%M": timedelta(minutes=1),
    "%Y-%m-%d %H:%M:%S": timedelta(seconds=1),
    "%Y-%m-%dT%H:%M:%S": timedelta(seconds=1),
}
# What the browser lets through (the server checks the rest: a 13th month is a form error).
MOMENT_PATTERN = r"\s*\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2})?)?\s*"
MOMENT_HELP = "a day, YYYY-MM-DD, or a day and a 24-hour time, YYYY-MM-DD HH:MM"


@dataclass(frozen=True)
class Span:
    """What a day-and-time field held: from `start` to just before `end`, both aware."""

    start: datetime
    end: datetime


class MomentInput(forms.TextInput):
    """A text field for MomentField: its placeholder and pattern say the ISO form."""

    def __init__(self, attrs=None):
        defaults = {
            "placeholder": "YYYY-MM-DD HH:MM",
            "pattern": MOMENT_PATTERN,
            "size": 16,
            "autocomplete": "off",
            "title": f"{MOMENT_HELP[0].upper()}{MOMENT_HELP[1:]}",
        }
        super().__init__({**defaults, **(attrs or {})})


class MomentField(forms.Field):
    """A day ("2026-12-07") or a day and a 24-hour time ("2026-12-07 14:30", seconds optional),
    in the current time zone: the Span it covers (the whole day, minute or second)."""

    widget = MomentInput
    default_error_messages = {"invalid": f"Enter {MOMENT_HELP} (time zone %(zone)s)."}

    def to_python(self, value) -> Span | None:
        text = str(value or "").strip()
        if not text:
            return None
        zone = timezone.get_current_timezone()
        for form, length in MOMENT_FORMATS.items():
            try:
                moment = datetime.strptime(text, form)
                # Each end of the span in the zone's own offset (a day across a DST change is 23 or 25 h).
                return Span(timezone.make_aware(moment, zone), timezone.make_aware(moment + length, zone))
            except (ValueError, OverflowError):
                continue
        raise ValidationError(self.error_messages["invalid"], code="invalid", params={"zone": str(zone)})


@extend_schema_field(
    {
        "type": "string",
        "pattern": f"^{MOMENT_PATTERN}$",
        "description": f"{MOMENT_HELP[0].upper()}{MOMENT_HELP[1:]}, in the configured time zone",
        "example": "2026-12-07 14:30",
    }
)
class MomentFilter(django_filters.Filter):
    """`field_name` from the start of the day, minute or second typed (`until=False`), or until its
    end (`until=True`: what was typed is included)."""

    field_class = MomentField

    def __init__(self, *args, until: bool = False, **kwargs):
        self.until = until
        kwargs.setdefault("lookup_expr", "lt" if until else "gte")
        super().__init__(*args, **kwargs)

    def filter(self, qs, value):
        if value is None:
            return qs
        return super().filter(qs, value.end if self.until else value.start)
