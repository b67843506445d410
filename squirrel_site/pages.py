"""What the server-rendered pages share: pages of rows without COUNT, links that keep the query.

Tables of 50,000 rows are paged by offset, bounded (MAX_PAGE) and with one extra row fetched to
know whether a next page exists: no COUNT(*) of the whole table on every page view.
"""

from dataclasses import dataclass

from django.http import QueryDict

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
