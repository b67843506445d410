"""Set-based SQL for tens of thousands of rows: COPY in, UPDATE ... FROM unnest, array operands.

The ORM's bulk_create, bulk_update and `__in` lists cost seconds at 50,000 rows (measured in
docs/benchmarks.md): bulk_update writes a CASE WHEN per row and field, and 50,000 `IN`
parameters cost almost a second of query building. Every app's bulk writes go through here.

Rows are plain tuples of Python values, never model instances: building 40,000 instances and
preparing their fields took longer than the SQL itself (restore bookkeeping, profiled).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from contextlib import contextmanager

from django.db import connection, models, transaction
from django.db.models.expressions import RawSQL

BATCH_SIZE = 10_000

_NUMBER_TYPES = ("bigint", "integer", "smallint", "double precision", "real")


def db_type(field) -> str:
    """The field's column type without a length: `varchar`, `bigint[]`, `double precision`."""
    return re.sub(r"\(\d+\)", "", field.db_type(connection))


def number_array(values: Iterable) -> str:
    """A PostgreSQL array literal of numbers (None -> NULL, NaN and infinities as PostgreSQL
    spells them): building it is ~20x faster than letting psycopg adapt a list element by element.
    """
    return "{" + ",".join("NULL" if v is None else _number(v) for v in values) + "}"


def _number(value) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return repr(value)


def in_array(values: Sequence, db_type_name: str) -> RawSQL:
    """An `__in` operand sent as one array parameter (`pk__in=in_array(ids, "bigint")`)."""
    parameter = number_array(values) if db_type_name in _NUMBER_TYPES else list(values)
    return RawSQL(f"SELECT unnest(%s::{db_type_name}[])", [parameter])


def next_ids(model, count: int) -> list[int]:
    """Reserve `count` primary keys from the table's sequence, so COPY can write them."""
    if not count:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [model._meta.db_table, model._meta.pk.column, count],
        )
        return [row[0] for row in cursor.fetchall()]


def copy_rows(model, columns: Sequence[str], rows: Iterable[tuple], *, binary: bool = False) -> None:
    """INSERT rows with PostgreSQL COPY (several times faster than bulk_create at 50,000 rows).

    Values are Python values of the columns' types (datetime, list of floats, ...). Binary
    COPY skips text formatting and parsing (~0.3 s instead of ~0.45 s for 50,000 snapshot rows),
    but then every value must match its column's type exactly (a float for a float column).
    """
    quote = connection.ops.quote_name
    fields = [model._meta.get_field(name) for name in columns]
    sql = f"COPY {quote(model._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) FROM STDIN"
    if binary:
        sql += " (FORMAT BINARY)"
    # The raw psycopg cursor bypasses Django's translation of driver errors (IntegrityError).
    with connection.wrap_database_errors, connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        if binary:
            copy.set_types([db_type(field) for field in fields])
        for row in rows:
            copy.write_row(row)


def update_rows(model, columns: Sequence[str], rows: Sequence[tuple], constants: Mapping | None = None) -> None:
    """UPDATE ... FROM unnest(arrays): set `columns` per row, `constants` on every row.

    `rows` are (pk, *values of columns). One statement per BATCH_SIZE rows. Number columns
    travel as array literals, array columns as text (unnest() of a two-dimensional array would
    flatten it), other columns as lists psycopg adapts.
    """
    if not rows:
        return
    meta = model._meta
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    fields = [meta.pk, *(meta.get_field(name) for name in columns)]
    constant_fields = [(meta.get_field(name), value) for name, value in (constants or {}).items()]
    types = [db_type(field) for field in fields]
    names = [quote(field.column) for field in fields]
    unnest = ", ".join("%s::text[]" if t.endswith("[]") else f"%s::{t}[]" for t in types)
    assignments = [f"{name} = v.{name}::{t}" for name, t in zip(names[1:], types[1:], strict=True)]
    assignments += [f"{quote(field.column)} = %s" for field, _ in constant_fields]
    sql = (
        f"UPDATE {table} SET {', '.join(assignments)} FROM unnest({unnest}) AS v({', '.join(names)}) "
        f"WHERE {table}.{names[0]} = v.{names[0]}"
    )
    fixed = [field.get_db_prep_save(value, connection) for field, value in constant_fields]
    with connection.cursor() as cursor:
        for start in range(0, len(rows), BATCH_SIZE):
            batch = rows[start : start + BATCH_SIZE]
            parameters = [
                _column(field, t, [row[i] for row in batch])
                for i, (field, t) in enumerate(zip(fields, types, strict=True))
            ]
            cursor.execute(sql, [*fixed, *parameters])  # SET comes before FROM unnest(...)


def _column(field, type_name: str, values: list):
    if type_name in _NUMBER_TYPES:
        return number_array(values)
    if type_name.endswith("[]"):
        if type_name[:-2] not in _NUMBER_TYPES:
            raise ValueError(f"update_rows() cannot send {field.name} ({type_name}): only arrays of numbers")
        return [None if v is None else number_array(v) for v in values]
    if isinstance(field, models.BooleanField):
        return values
    return [field.get_db_prep_save(v, connection) for v in values]


def delete_rows(model, ids: Sequence[int]) -> None:
    """DELETE rows by primary key, one statement per table, doing what Django's delete() would for
    the references to them: nulling on_delete=SET_NULL foreign keys and deleting many-to-many links.

    Django's delete() loads every row first and deletes 100 ids per statement: 5.8 s for 50,000
    PVs with their 117,000 tag links, against 1.4 s here (both with commit, on a shared machine).
    Any other kind of reference (CASCADE to a real model, PROTECT, ...) is refused rather than
    guessed. No delete signals are sent.
    """
    quote = connection.ops.quote_name
    operand = [number_array(ids)]
    pk_type = db_type(model._meta.pk)
    statements = []
    for relation in model._meta.get_fields(include_hidden=True):
        is_reference = relation.auto_created and not relation.concrete
        if not (is_reference and (relation.one_to_many or relation.one_to_one)):
            continue
        table, column = quote(relation.related_model._meta.db_table), quote(relation.field.column)
        if relation.on_delete is models.SET_NULL:
            statements.append(f"UPDATE {table} SET {column} = NULL WHERE {column} = ANY(%s::{pk_type}[])")
        elif relation.on_delete is models.CASCADE and relation.related_model._meta.auto_created:
            statements.append(f"DELETE FROM {table} WHERE {column} = ANY(%s::{pk_type}[])")
        else:
            raise ValueError(
                f"delete_rows() cannot follow {relation.related_model._meta.label}.{relation.field.name} "
                f"(on_delete={relation.on_delete.__name__}); use QuerySet.delete()."
            )
    table, pk = quote(model._meta.db_table), quote(model._meta.pk.column)
    statements.append(f"DELETE FROM {table} WHERE {pk} = ANY(%s::{pk_type}[])")
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql, operand)


@contextmanager
def local_settings(**settings: str):
    """A cursor in a transaction whose PostgreSQL `settings` (e.g. jit="off") hold inside this
    block alone: set with SET LOCAL semantics, and put back on leaving it, because inside an
    outer transaction the block is only a savepoint and SET LOCAL would outlive it."""
    names, n = list(settings), len(settings)
    with transaction.atomic(), connection.cursor() as cursor:
        # One round trip: the subquery (kept apart by OFFSET 0) reads the old values before the
        # outer select list sets the new ones.
        old = ", ".join(f"current_setting(%s) AS s{i}" for i in range(n))
        cursor.execute(f"SELECT old.*, {_set(n)} FROM (SELECT {old} OFFSET 0) old", [*_pairs(settings), *names])
        previous = dict(zip(names, cursor.fetchone()[:n], strict=True))
        yield cursor
        # An exception skips this: rolling the savepoint or transaction back undoes the settings.
        cursor.execute(f"SELECT {_set(n)}", _pairs(previous))


def _set(n: int) -> str:
    return ", ".join(["set_config(%s, %s, true)"] * n)


def _pairs(settings: Mapping[str, str]) -> list[str]:
    return [part for name, value in settings.items() for part in (name, value)]


def set_join():
    """local_settings() for a statement that joins two sets of thousands of rows (a new preview's
    items with a new undo snapshot's values, a snapshot's values with the registry): planned
    without nested loops.

    Rows a bulk write has just added are newer than the planner's statistics until the next
    ANALYZE (never, where autovacuum is off): their new snapshot, preview or restore id lies
    beyond the histogram and each side is estimated at one row. A nested loop of two such sides
    scans one set once per row of the other: restoring 30,000 setpoints took 90-103 s instead of
    3 that way (42,500: 7 minutes on a loaded machine). Between two sets that size a hash or merge join is
    always the right plan, and it copes with any misestimate (the hash grows its batches). A
    registry analyzed while empty does the same the other way: the planner scanned all of it
    once per snapshot value (a materialized nested loop, seen in test_bulk_plans).
    Statements that look up a few rows by key are left alone: a nested loop over a unique index
    is what they want.
    """
    return local_settings(enable_nestloop="off")
