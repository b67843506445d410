"""A snapshot's values against the live values in Redis (the snapshot page's live filters).

Pure reads: SnapshotValue rows from PostgreSQL, live values with one pipelined HMGET through
monitor.live, the comparison rules of snapshots.compare. The live address of a row is its PV's
current setpoint address, as a restore would write it; rows whose PV was deleted have none.
"""

from monitor import live
from snapshots.compare import within_tolerance
from snapshots.models import _typed

_COLUMNS = (
    "pk", "pv__setpoint_address", "value_type", "setpoint_num", "setpoint_str", "setpoint_array", "connected",
    "pv__abs_tolerance", "pv__rel_tolerance",
)  # fmt: skip


def _rows_with_live(values):
    rows = list(values.order_by().values_list(*_COLUMNS))
    current = live.read_values([row[1] for row in rows if row[1]])
    for row in rows:
        if row[1]:
            yield row, current.get(row[1])


def out_of_tolerance(values) -> list[int]:
    """Ids of the rows in `values` whose saved setpoint and live value differ beyond tolerance.

    Both values must exist: a row disconnected then or now is not "out of tolerance" (see
    disconnected_now); a live value of another type is.
    """
    ids = []
    for (pk, _address, kind, num, text, array, connected, abs_tol, rel_tol), value in _rows_with_live(values):
        if not connected or value is None or not value.connected:
            continue
        if not within_tolerance(_typed(kind, num, text, array), value.value, kind, abs_tol or 0.0, rel_tol or 0.0):
            ids.append(pk)
    return ids


def disconnected_now(values) -> list[int]:
    """Ids of the rows in `values` whose PV has no connected live value now."""
    return [row[0] for row, value in _rows_with_live(values) if value is None or not value.connected]
