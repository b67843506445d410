"""Curation actions on the PV registry, shared by the admin, the API and commands.

Each takes a PV queryset and runs set-based SQL, so "select all 50,000" costs one or two
statements, never a row per PV in Python.
"""

from django.db import connection, transaction
from django.utils import timezone

from pvs.models import PV
from pvs.validators import validate_tolerance

_PV_TABLE = PV._meta.db_table
_LINK_TABLE = PV.tags.through._meta.db_table


def _selection_sql(pvs) -> tuple[str, tuple]:
    """The SQL selecting the ids of `pvs`, for use inside one set-based statement."""
    return pvs.order_by().values("id").query.sql_with_params()


def _link_statement(sql: str, pvs, tags) -> int:
    selection, params = _selection_sql(pvs)
    with connection.cursor() as cursor:
        cursor.execute(
            sql.format(links=_LINK_TABLE, pvs=_PV_TABLE, selection=selection),
            [*params, [tag.id for tag in tags], timezone.now()],
        )
        return cursor.fetchone()[0]


@transaction.atomic
def add_tags(pvs, tags) -> int:
    """Give every PV in `pvs` each of `tags`; returns how many PV-tag links were created."""
    return _link_statement(
        """WITH added AS (
               INSERT INTO {links} (pv_id, tag_id)
               SELECT sel.id, tag_id FROM ({selection}) AS sel CROSS JOIN unnest(%s::bigint[]) AS tag_id
               ON CONFLICT (pv_id, tag_id) DO NOTHING
               RETURNING pv_id),
           touched AS (
               UPDATE {pvs} SET updated_at = %s WHERE id IN (SELECT pv_id FROM added) RETURNING id)
           SELECT (SELECT count(*) FROM added)""",
        pvs,
        tags,
    )


@transaction.atomic
def remove_tags(pvs, tags) -> int:
    """Take each of `tags` off every PV in `pvs`; returns how many links were removed."""
    return _link_statement(
        """WITH removed AS (
               DELETE FROM {links} WHERE pv_id IN ({selection}) AND tag_id = ANY(%s::bigint[])
               RETURNING pv_id),
           touched AS (
               UPDATE {pvs} SET updated_at = %s WHERE id IN (SELECT pv_id FROM removed) RETURNING id)
           SELECT (SELECT count(*) FROM removed)""",
        pvs,
        tags,
    )


def set_tolerances(pvs, *, abs_tolerance: float | None = None, rel_tolerance: float | None = None) -> int:
    """Set the absolute and/or relative tolerance of every PV in `pvs`."""
    changes = {}
    if abs_tolerance is not None:
        validate_tolerance(abs_tolerance)
        changes["abs_tolerance"] = abs_tolerance
    if rel_tolerance is not None:
        validate_tolerance(rel_tolerance)
        changes["rel_tolerance"] = rel_tolerance
    if not changes:
        return 0
    return pvs.update(updated_at=timezone.now(), **changes)


def set_read_only(pvs, read_only: bool) -> int:
    """Mark every PV in `pvs` read-only (never restored) or writable."""
    return pvs.exclude(read_only=read_only).update(read_only=read_only, updated_at=timezone.now())
