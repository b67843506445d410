"""Paginators: admin lists that stay fast on large tables, and the API's cursor pages."""

from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination

# Below this many rows an exact count is cheap and an estimate could confuse.
EXACT_COUNT_BELOW = 10_000


class EstimatedCountPaginator(Paginator):
    """Uses PostgreSQL's row estimate for an unfiltered table instead of COUNT(*).

    Filtered lists still count exactly (their counts drive the page links); only the
    whole-table count, which grows with the registry, is estimated.
    """

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        query = getattr(queryset, "query", None)
        if query is not None and not query.where and not query.distinct:
            estimate = self._estimate(queryset)
            if estimate >= EXACT_COUNT_BELOW:
                return estimate
        return super().count

    @staticmethod
    def _estimate(queryset) -> int:
        with connections[queryset.db].cursor() as cursor:
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                [queryset.model._meta.db_table],
            )
            row = cursor.fetchone()
        return int(row[0]) if row else -1


class IdCursorPagination(CursorPagination):
    """Cursor pages of an API list in id order (`ordering` is "id" or "-id").

    DRF trusts the position a cursor carries, and a crafted cursor whose position is not an id
    would fail in the query (a 500): it is refused like any other invalid cursor (404). A
    `page_size` that is not a positive integer is refused (400) rather than silently ignored;
    one above `max_page_size` gives pages of `max_page_size`.
    """

    ordering = "-id"

    def get_page_size(self, request):
        given = request.query_params.get(self.page_size_query_param) if self.page_size_query_param else None
        if not given:
            return self.page_size
        try:
            size = int(given)
        except ValueError:
            size = 0
        if size < 1:
            raise ValidationError({self.page_size_query_param: ["Enter a positive integer."]})
        return min(size, self.max_page_size or size)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"]["minimum"] = 1
                parameter["description"] = f"Rows per page, {self.page_size} by default, at most {self.max_page_size}."
        return parameters

    def decode_cursor(self, request):
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None:
            try:
                int(cursor.position)
            except ValueError:
                raise NotFound(self.invalid_cursor_message) from None
        return cursor
