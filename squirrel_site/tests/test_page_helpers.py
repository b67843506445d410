"""squirrel_site.pages: links that keep the query, bounded page numbers, pages without COUNT, ISO
24-hour days and times in the filter forms."""

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.http import QueryDict

from squirrel_site.pages import (
    MAX_PAGE,
    MOMENT_PATTERN,
    MomentField,
    Span,
    offset_page,
    page_number,
    sort_columns,
    with_query,
)


def test_links_keep_the_other_parameters_and_replace_or_drop_one():
    query = QueryDict("device=Q&tag=1&tag=2&page=3")
    assert with_query(query, page=4) == "?device=Q&tag=1&tag=2&page=4"
    assert with_query(query, page=None) == "?device=Q&tag=1&tag=2"
    assert with_query(QueryDict(), page=None) == "?"


@pytest.mark.parametrize("raw, number", [("", 1), ("2", 2), ("x", 1), ("-5", 1), ("0", 1), (str(10**9), MAX_PAGE)])
def test_page_numbers_are_bounded(raw, number):
    assert page_number(QueryDict(f"page={raw}")) == number


def test_a_page_fetches_one_extra_row_to_know_if_there_is_a_next_one():
    rows = list(range(250))
    third = offset_page(QueryDict("page=3"), rows, size=100)
    assert (third.rows[0], len(third.rows), third.has_next, third.start, third.end) == (200, 50, False, 201, 250)
    second = offset_page(QueryDict("page=2&x=1"), rows, size=100)
    assert second.has_next and second.next_url == "?x=1&page=3" and second.previous_url == "?x=1"
    assert (second.count, second.last_number) == (None, None)
    assert offset_page(QueryDict(), rows, size=100, count=250).last_number == 3


def test_sort_links_flip_the_active_column_and_start_others_ascending():
    columns = sort_columns(QueryDict("sort=name&page=4"), "name", [("name", "PV"), ("device", "Device")])
    assert (columns["name"].url, columns["name"].active, columns["name"].descending) == ("?sort=-name", True, False)
    assert columns["device"].url == "?sort=device" and not columns["device"].active
    flipped = sort_columns(QueryDict("sort=-name"), "-name", [("name", "PV")])
    assert (flipped["name"].url, flipped["name"].descending) == ("?sort=name", True)


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2026-12-07", (2026, 12, 7, 0, 0, 0), (2026, 12, 8, 0, 0, 0)),
        (" 2026-12-07 14:30 ", (2026, 12, 7, 14, 30, 0), (2026, 12, 7, 14, 31, 0)),
        ("2026-12-07T14:30", (2026, 12, 7, 14, 30, 0), (2026, 12, 7, 14, 31, 0)),
        ("2026-12-07 14:30:05", (2026, 12, 7, 14, 30, 5), (2026, 12, 7, 14, 30, 6)),
        ("2026-3-9 7:05", (2026, 3, 9, 7, 5, 0), (2026, 3, 9, 7, 6, 0)),
    ],
)
def test_a_day_or_a_24_hour_time_spans_its_day_minute_or_second_in_the_time_zone(settings, text, start, end):
    settings.TIME_ZONE = "Europe/Zurich"
    zone = ZoneInfo("Europe/Zurich")
    assert MomentField().clean(text) == Span(datetime(*start, tzinfo=zone), datetime(*end, tzinfo=zone))


def test_a_day_across_a_daylight_saving_change_ends_at_the_next_local_midnight(settings):
    settings.TIME_ZONE = "Europe/Zurich"
    span = MomentField().clean("2026-03-29")  # clocks go forward: a day of 23 hours
    assert (span.end.astimezone(UTC) - span.start.astimezone(UTC)).total_seconds() == 23 * 3600


@pytest.mark.parametrize(
    "text", ["12/07/2026", "2026-12-07 2:30 PM", "2026-13-01", "2026-12-07 24:00", "9999-12-31", "x"]
)
def test_anything_else_is_a_form_error_naming_the_form_and_the_time_zone(settings, text):
    settings.TIME_ZONE = "Europe/Zurich"
    with pytest.raises(ValidationError) as error:
        MomentField().clean(text)
    assert error.value.messages == [
        "Enter a day, YYYY-MM-DD, or a day and a 24-hour time, YYYY-MM-DD HH:MM (time zone Europe/Zurich)."
    ]


def test_an_empty_moment_is_no_filter():
    assert MomentField(required=False).clean("  ") is None


def test_the_input_is_text_with_the_iso_form_as_placeholder_and_pattern():
    html = MomentField().widget.render("date_from", "2026-12-07 14:30")
    assert 'type="text"' in html and 'placeholder="YYYY-MM-DD HH:MM"' in html and "pattern=" in html
    assert 'value="2026-12-07 14:30"' in html
    assert re.fullmatch(MOMENT_PATTERN, "2026-12-07 14:30") and not re.fullmatch(MOMENT_PATTERN, "12/07/2026")
