"""Paginators that keep admin lists fast on large tables."""

from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property

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
