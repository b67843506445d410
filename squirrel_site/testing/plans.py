"""The plans of the statements a block of code runs, read before each runs (EXPLAIN without
ANALYZE), and the shapes in them that cost rows x rows at 50,000 PVs whatever the planner's
statistics said (snapshots/restore/tests/test_bulk_plans.py, pvs/tests/test_tag_plans.py)."""

import json
import math
import re

from django.db import connection

from pvs.models import PV, PVSet
from snapshots.models import RestoreItem, RestorePreviewItem, SnapshotValue

BULK_TABLES = {
    m._meta.db_table for m in (SnapshotValue, RestorePreviewItem, RestoreItem, PV, PV.tags.through, PVSet.pvs.through)
}
_EXPLAINED = ("SELECT", "WITH", "INSERT", "UPDATE", "DELETE")
_INDEX_SCANS = ("Index Scan", "Index Only Scan", "Bitmap Index Scan")


class Plans:
    """EXPLAIN (FORMAT JSON) of every statement this connection runs inside the block."""

    def __init__(self):
        self.plans: list[tuple[str, dict]] = []
        self._unique_indexes: dict[str, int] = {}  # name: key columns

    def __enter__(self):
        with connection.cursor() as cursor:
            cursor.execute("SELECT indexrelid::regclass::text, indnkeyatts FROM pg_index WHERE indisunique")
            self._unique_indexes = dict(cursor.fetchall())
        self._wrapper = connection.execute_wrapper(self._explain)
        self._wrapper.__enter__()
        return self

    def __exit__(self, *exc_info):
        self._wrapper.__exit__(*exc_info)

    def _explain(self, execute, sql, params, many, context):
        statement = sql.lstrip().upper()
        if not many and statement.startswith(_EXPLAINED) and "SET_CONFIG(" not in statement:
            with connection.cursor() as cursor:  # not the caller's: it may be a server-side one
                cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
                plan = cursor.fetchone()[0]
            self.plans.append((sql, (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]))
        return execute(sql, params, many, context)

    def quadratic_joins(self) -> list[str]:
        """The nested loops that read a bulk table once per row of another, other than one row
        by key (a loop over a small table, tag groups say, costs rows x a few)."""
        found = []
        for sql, plan in self.plans:
            for node in _nodes(plan):
                if node["Node Type"] != "Nested Loop":
                    continue
                outer, inner = (
                    next(c for c in node["Plans"] if c.get("Parent Relationship") == side)
                    for side in ("Outer", "Inner")
                )
                both_bulk = _tables(outer) & BULK_TABLES and _tables(inner) & BULK_TABLES
                if both_bulk and not _one_row(outer) and not self._lookup_by_key(inner):
                    found.append(f"{' '.join(sql.split())[:300]}\n  inner: {_describe(inner)}")
        return found

    def reads_not_by(self, table: str, column: str, *, among: str) -> list[str]:
        """In the statements that read the table `among` too, the reads of `table` other than
        through an index on `column`: a scan of all of it, or of an index on another column
        with `column` as a filter (a page's tag links read tag by tag)."""
        found = []
        for sql, plan in self.plans:
            if among not in _tables(plan):
                continue
            for node in _nodes(plan):
                if node.get("Relation Name") != table:
                    continue
                lookups = [n for n in _nodes(node) if n["Node Type"] in _INDEX_SCANS]
                by_column = [re.search(rf"\b{column} = ", n.get("Index Cond", "")) for n in lookups]
                if not lookups or not all(by_column):
                    found.append(f"{' '.join(sql.split())[:300]}\n  read: {_describe(node)}")
        return found

    def _lookup_by_key(self, node: dict) -> bool:
        """An index scan of a unique index with an equality on each of its columns: one row per
        outer row. (A prefix of it, or `= ANY(array)`, reads many.)"""
        while node["Node Type"] in ("Memoize", "Bitmap Heap Scan"):
            node = node["Plans"][0]
        if node["Node Type"] not in _INDEX_SCANS:
            return False
        equalities = len(re.findall(r" = (?!ANY)", node.get("Index Cond", "")))
        return equalities >= self._unique_indexes.get(node["Index Name"], math.inf)


def _nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _one_row(plan: dict) -> bool:
    """An aggregate without GROUP BY (the counts a compare page joins ON true)."""
    return plan["Node Type"] == "Aggregate" and plan.get("Strategy") == "Plain"


def _tables(plan: dict) -> set[str]:
    return {node["Relation Name"] for node in _nodes(plan) if "Relation Name" in node}


def _describe(node: dict) -> str:
    return ", ".join(
        f"{n['Node Type']} {n.get('Relation Name', '')} {n.get('Index Name', '')} {n.get('Index Cond', '')}".strip()
        for n in _nodes(node)
    )


def analyze() -> None:
    """ANALYZE every table: the planner's statistics as they are now."""
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
