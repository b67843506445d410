"""A snapshot's values against the live values in Redis (the snapshot page's live filters).

Pure reads: SnapshotValue rows from PostgreSQL, live values with one pipelined HMGET through
monitor.live, each row's status by snapshots.comparison.rules.comparison_status (as the compare page
decides it). The live address of a row is its PV's current setpoint address, as a restore would
write it; rows whose PV was deleted have none and are left out.
"""

from monitor import live
from snapshots.comparison.rules import ComparisonStatus, comparison_status
from squirrel_site.bulk_sql import set_join
from squirrel_site.epics_values import Value, from_columns

# Differences beyond tolerance: a value out of it, or a record whose type changed.
DIFFERS = frozenset({ComparisonStatus.OUT_OF_TOLERANCE, ComparisonStatus.TYPE_CHANGED})

_COLUMNS = (
    "pk",
    "pv__setpoint_address",
    "value_type",
    "setpoint_num",
    "setpoint_str",
    "setpoint_array",
    "connected",
    "pv__abs_tolerance",
    "pv__rel_tolerance",
)


def _rows_with_live(values):
    with set_join():  # the snapshot's values with the registry: two whole sets
        rows = list(values.order_by().values_list(*_COLUMNS))
    current = live.read_values([row[1] for row in rows if row[1]])
    for row in rows:
        if row[1]:
            yield row, current.get(row[1])


def out_of_tolerance(values) -> list[int]:
    """Ids of the rows in `values` whose saved setpoint and live value differ beyond tolerance
    (or whose type changed); a row disconnected then or now is not one of them."""
    ids = []
    for (pk, _address, kind, num, text, array, connected, abs_tol, rel_tol), value in _rows_with_live(values):
        if value is None:
            continue
        saved = Value("", kind, from_columns(kind, num, text, array), connected=connected)
        if comparison_status(saved, value, abs_tol or 0.0, rel_tol or 0.0) in DIFFERS:
            ids.append(pk)
    return ids


def disconnected_now(values) -> list[int]:
    """Ids of the rows in `values` whose PV has no connected live value now."""
    return [row[0] for row, value in _rows_with_live(values) if value is None or not value.connected]
