"""The structures two or more snapshots hold differently, decided in Python before the comparison's
SQL runs: what `rules_sql.status` reads as its `decided` column (docs/compare.md, "Structures")."""

from __future__ import annotations

import json
from collections.abc import Sequence

from django.db import connection

from snapshots.capture.models import SnapshotValue
from snapshots.comparison.rules import STRUCT, tolerant_pairs
from squirrel_site import epics_values as ev

_VALUES_TABLE = SnapshotValue._meta.db_table


def structure_pairs(sides: Sequence[int]) -> list[str]:
    """For each snapshot of `sides` after the first, its structures whose texts differ from the
    first snapshot's but which may match within a tolerance (rules.tolerant_pairs), as JSON text
    {PV name: [[saved numbers], [live numbers]]} (numbers as strings, "NaN" and the infinities
    too): the `decided` column rules_sql.status reads, which applies the row's tolerances to them.
    Reads only the snapshots' structures (the partial index snapshotvalue_structures)."""
    columns: list[dict[str, list]] = [{} for _ in sides[1:]]
    structure_kinds = ", ".join(f"'{kind}'" for kind in sorted(ev.kinds(compare=STRUCT)))
    if structure_kinds and len(sides) > 1:
        query = (
            f"SELECT snapshot_id, pv_name, value_type, setpoint_str FROM {_VALUES_TABLE}"
            f" WHERE snapshot_id = ANY(%s::bigint[]) AND value_type IN ({structure_kinds})"
        )
        with connection.cursor() as cursor:
            cursor.execute(query, [list(sides)])
            found = cursor.fetchall()
        by_side: dict[int, dict[str, tuple[str, str | None]]] = {}
        for snapshot_id, name, kind, text in found:
            by_side.setdefault(snapshot_id, {})[name] = (kind, text)
        reference = by_side.get(sides[0], {})
        for column, pk in zip(columns, sides[1:], strict=True):
            for name, (kind, text) in by_side.get(pk, {}).items():
                saved = reference.get(name)
                if saved is None or saved[0] != kind or saved[1] is None or text is None or saved[1] == text:
                    continue
                pairs = tolerant_pairs(saved[1], text)
                if pairs is not None:
                    column[name] = [[repr(x) for x in numbers] for numbers in pairs]
    return [json.dumps(column) for column in columns]
