"""squirrel_site.pages: links that keep the query, bounded page numbers, pages without COUNT."""

import pytest
from django.http import QueryDict

from squirrel_site.pages import MAX_PAGE, offset_page, page_number, sort_columns, with_query


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
