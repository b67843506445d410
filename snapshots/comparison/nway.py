"""N-way comparison: a reference snapshot and up to eight columns (other snapshots, and at most one
column of live values) side by side, each column compared with the reference.

One PostgreSQL query pairs every snapshot at once: a chain of FULL OUTER JOINs of each snapshot's
values on the PV name (hash or merge joins only, whatever the statistics say), joined to the
registry by primary key. The status
of each snapshot column is the SQL of snapshots.comparison.rules_sql, so filtering, counting and
paging 50,000 rows stay in the database, and only the page's rows travel, fetched by id after.
A live column is compared in Python (snapshots.comparison.rules, values from monitor.live): then
every row's reference value and live value are read, as the two-way comparison with live values
does when it counts.

Each cell of a row is a snapshots.comparison.rows.ComparisonRow of the reference (its side `a`)
against the column (side `b`), so a cell's status, delta (column − reference, signed, with
units), differing array elements and display are the two-way comparison's. Sides carry their
readbacks (Shown.readback). Rows are sorted by PV name.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field

from monitor import live
from pvs.models import PV
from pvs.selections import name_condition, selected_ids_array
from snapshots.capture.models import Snapshot, SnapshotValue
from snapshots.comparison import rules_sql as sql
from snapshots.comparison.rows import (
    _STATUS_LABELS,
    COMPARED,
    NO_VALUE,
    STATUS_SIDE,
    ComparisonRow,
    RowFilters,
    Shown,
    _live_side,
    _set_delta,
    analytic_cursor,
    format_value,
    saved_readback,
)
from snapshots.comparison.rules import MATCHING_STATUSES, ComparisonStatus, columns_side_by_side, comparison_status
from snapshots.comparison.structure_pairs import structure_pairs
from squirrel_site import safe_csv
from squirrel_site.epics_values import (
    ARRAY,
    FIXED_POINT_LIMIT,
    NUM,
    NUMBER,
    NUMBER_ARRAY,
    NUMBER_FORMATS,
    STRUCT,
    Value,
    compare_of,
    delta_text,
    from_columns,
    kinds,
    label_of,
    number_text,
    saved_label,
)

MAX_COLUMNS = 8
CSV_CHUNK = 2000  # rows built and written at a time by write_nway_csv
_VALUES_TABLE = SnapshotValue._meta.db_table
_PV_TABLE = PV._meta.db_table
_MATCHING = frozenset(status.value for status in MATCHING_STATUSES)


@dataclass(frozen=True)
class NWayComparison(RowFilters):
    """The reference snapshot against `columns` (snapshots; None is the live values).

    The filters are RowFilters', as a two-way Comparison's, applied to a row as a whole:
    `statuses` shows rows where any column has one of them, `differences_only` rows where any
    column differs (neither equal nor within tolerance), `min_severity` rows with that alarm
    severity or worse on any side. `descending` sorts by name from Z to A.
    """

    reference: Snapshot
    columns: tuple[Snapshot | None, ...]
    descending: bool = False

    def __post_init__(self):
        if not 1 <= len(self.columns) <= MAX_COLUMNS:
            raise ValueError(f"compare 1 to {MAX_COLUMNS} columns with the reference, not {len(self.columns)}")
        if sum(column is None for column in self.columns) > 1:
            raise ValueError("at most one column of live values")

    @property
    def live_index(self) -> int | None:
        """The position of the live column, if any."""
        return next((i for i, column in enumerate(self.columns) if column is None), None)

    def shows(self, statuses) -> bool:
        """True if a row whose columns have `statuses` passes the status filters."""
        statuses = [status for status in statuses if status is not None]
        if self.differences_only and all(status in _MATCHING for status in statuses):
            return False
        return not self.statuses or any(status in self.statuses for status in statuses)


@dataclass(slots=True)
class NWayRow:
    """One PV: the reference side and one ComparisonRow (reference against column) per column."""

    name: str
    pv_id: int | None
    device: str
    abs_tolerance: float
    rel_tolerance: float
    reference: Shown | None
    cells: list[ComparisonRow]

    @property
    def statuses(self) -> list[str | None]:
        """Each column's status; None where the PV is in neither the reference nor the column."""
        return [cell.status for cell in self.cells]

    @property
    def differs(self) -> bool:
        return any(status is not None and status not in _MATCHING for status in self.statuses)

    @property
    def severity(self) -> int | None:
        known = [cell.severity for cell in self.cells if cell.severity is not None]
        return max(known) if known else None

    @property
    def table_columns(self):
        """For an NTTable out of tolerance in some column: its differing table columns, each with
        the reference's and every column's elements side by side (rules.columns_side_by_side);
        None for other rows."""
        reference = self.reference
        if reference is None or compare_of(reference.kind) != STRUCT:
            return None
        if not any(cell.status == ComparisonStatus.OUT_OF_TOLERANCE for cell in self.cells):
            return None
        others = [cell.b.value if cell.status in COMPARED and cell.b is not None else None for cell in self.cells]
        return columns_side_by_side(reference.value, others, self.abs_tolerance, self.rel_tolerance)


@dataclass
class NWayPage:
    """One page of rows; `total` rows pass the filters; `counts[i]` the rows of each status in
    column i over the rows that pass every filter but the status ones."""

    rows: list[NWayRow]
    total: int
    counts: list[dict[str, int]]
    read_at: float = field(default_factory=time.time)


def compare_columns(comparison: NWayComparison, *, offset: int = 0, limit: int | None = 100) -> NWayPage:
    """The rows of `comparison` from `offset`, at most `limit` (None: all), by name.

    Raises redis.RedisError when there is a live column and Redis cannot be reached.
    """
    keyed, total, counts = _keyed_page(comparison, offset, limit)
    return NWayPage(_rows(comparison, keyed), total, counts)


def _keyed_page(comparison: NWayComparison, offset: int, limit: int | None) -> tuple[list[dict], int, list]:
    """(the page's narrow rows, the total, the counts per column)."""
    sides = [comparison.reference.pk] + [column.pk for column in comparison.columns if column is not None]
    base, params = _keyed_query(comparison, sides)
    order = f'ORDER BY name COLLATE "C" {"DESC" if comparison.descending else "ASC"}'
    if comparison.live_index is None:
        return _page_in_sql(comparison, base, params, order, offset, limit)
    return _page_with_live(comparison, base, params, order, offset, limit)


def _keyed_query(comparison: NWayComparison, sides: list[int]) -> tuple[str, list]:
    """CTEs ending in `keyed`: one narrow row per PV name in any of the snapshots (a FULL JOIN of
    the snapshots' values on the name, each joined on the first name found) that passes the
    registry, name and severity filters, with each snapshot's value id and each snapshot column's
    status against the reference (`statuses`, in snapshot column order)."""
    conditions, params = [], []
    if comparison.pvs is not None:  # a constant array: no plan joins the selection's tables row by row
        # On the values' PV id: on the registry's, the planner applied it to the registry scan and,
        # the values estimated at one row with stale statistics, joined it in a nested loop.
        conditions.append("any_pv = ANY(%s::bigint[])")
        params.append(selected_ids_array(comparison.pvs))
    # The name is the join key: filtering by it in each scan spares joining the other rows.
    named, name_params = "", []
    if comparison.name:
        condition, one_side = name_condition("pv_name", comparison.name)
        named, name_params = f" AND {condition}", one_side * len(sides)
    side_columns = ", ".join(f"{column} AS {name}" for name, column in STATUS_SIDE.items())
    joined, names = "", []
    for i, pk in enumerate(sides):
        values = f"SELECT id, pv_name, pv_id, {side_columns} FROM {_VALUES_TABLE}"
        scan = f"({values} WHERE snapshot_id = {int(pk)}{named}) s{i}"
        on = f" ON s{i}.pv_name = coalesce({', '.join(names)})" if names else ""
        joined += f" FULL JOIN {scan}{on}" if names else scan
        names.append(f"s{i}.pv_name")
    picked = ", ".join(
        f"s{i}.id AS s{i}_id, " + ", ".join(f"s{i}.{name} AS s{i}_{name}" for name in STATUS_SIDE)
        for i in range(len(sides))
    )
    # The registry PV: the last column's that has the PV, as a two-way comparison takes B's.
    any_pv = f"coalesce({', '.join(f's{i}.pv_id' for i in reversed(range(len(sides))))})"
    severe, severe_params = "true", []
    if comparison.min_severity is not None:
        # A column for the status filters: with a live column, a row may be severe by its live value.
        severe = f"coalesce(greatest({', '.join(f's{i}_severity' for i in range(len(sides)))}) >= %s, false)"
        severe_params = [comparison.min_severity]
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    aligned, statuses = [], []
    for i in range(1, len(sides)):
        aligned += [f"s0_id IS NOT NULL AS k{i}_in_a", f"s{i}_id IS NOT NULL AS k{i}_in_b"]
        aligned += [f"abs_tol AS k{i}_abs_tol", f"rel_tol AS k{i}_rel_tol"]
        aligned += [f"s0_{name} AS k{i}_a_{name}, s{i}_{name} AS k{i}_b_{name}" for name in STATUS_SIDE]
        aligned.append(f"%s::jsonb -> name AS k{i}_decided")
        statuses.append(f"CASE WHEN s0_id IS NOT NULL OR s{i}_id IS NOT NULL THEN {sql.status(f'k{i}_')} END")
    ids = ", ".join(f"s{i}_id" for i in range(len(sides)))
    reference = ", ".join(f"s0_{name}" for name in STATUS_SIDE)
    query = f"""
        WITH grouped AS (
            SELECT coalesce({", ".join(names)}) AS name, {any_pv} AS any_pv, {picked}
            FROM {joined}
        ), pair AS (
            SELECT grouped.*, p.id AS pv_id, p.device AS device, p.setpoint_address AS address,
                   p.readback_address AS readback_address,
                   coalesce(%s::float8, p.abs_tolerance, 0) AS abs_tol,
                   coalesce(%s::float8, p.rel_tolerance, 0) AS rel_tol
            FROM grouped LEFT JOIN {_PV_TABLE} p ON p.id = grouped.any_pv
        ), filtered AS (
            SELECT * FROM pair {where}
        ), aligned AS (
            SELECT filtered.*{"".join(f", {column}" for column in aligned)} FROM filtered
        ), keyed AS MATERIALIZED (
            SELECT name, pv_id, device, address, readback_address, abs_tol, rel_tol, {ids}, {reference},
                   {severe} AS severe, ARRAY[{", ".join(statuses) or ""}]::text[] AS statuses
            FROM aligned
        )"""
    head = [*name_params, comparison.abs_tolerance, comparison.rel_tolerance]
    decided = structure_pairs(sides)
    return query, head + params + decided + severe_params


_KEYED = ["name", "pv_id", "device", "address", "readback_address", "abs_tol", "rel_tol"]


def _keyed_columns(snapshot_count: int) -> list[str]:
    return (
        _KEYED
        + [f"s{i}_id" for i in range(snapshot_count + 1)]
        + [f"s0_{name}" for name in STATUS_SIDE]
        + ["severe", "statuses"]
    )


def _status_condition(comparison: NWayComparison) -> tuple[str, list]:
    conditions, params = [], []
    if comparison.min_severity is not None:
        conditions.append("severe")
    if comparison.differences_only:
        conditions.append("NOT (array_remove(statuses, NULL) <@ %s::text[])")
        params.append(sorted(_MATCHING))
    if comparison.statuses:
        conditions.append("statuses && %s::text[]")
        params.append(sorted(comparison.statuses))
    return (f"WHERE {' AND '.join(conditions)}" if conditions else ""), params


def _page_in_sql(comparison, base, params, order, offset, limit) -> tuple[list[dict], int, list[dict]]:
    """Filter, count and page in the database: one query, the page's narrow rows and the counts."""
    condition, condition_params = _status_condition(comparison)
    window = " LIMIT %s OFFSET %s" if limit is not None else " OFFSET %s"
    window_params = [limit, offset] if limit is not None else [offset]
    columns = _keyed_columns(len(comparison.columns))
    query = (
        f"{base}, page AS (SELECT * FROM keyed {condition} {order}{window}),"
        f" stats AS (SELECT (SELECT count(*) FROM keyed {condition}) AS shown,"
        f" (SELECT json_object_agg(k, n)::text FROM (SELECT u.i || ':' || u.s AS k, count(*) AS n"
        f" FROM keyed CROSS JOIN LATERAL unnest(keyed.statuses) WITH ORDINALITY AS u(s, i)"
        f" WHERE u.s IS NOT NULL{' AND severe' if comparison.min_severity is not None else ''}"
        f" GROUP BY u.i, u.s) c) AS counts)"
        f" SELECT {', '.join(f'page.{column}' for column in columns)}, stats.shown, stats.counts"
        f" FROM page RIGHT JOIN stats ON true {order.replace('name', 'page.name')}"
    )
    with analytic_cursor() as cursor:
        cursor.execute(query, params + condition_params + window_params + condition_params)
        records = cursor.fetchall()
    shown, counted = records[0][-2], json.loads(records[0][-1] or "{}")
    counts = [{status.value: 0 for status in ComparisonStatus} for _ in comparison.columns]
    for key, n in counted.items():
        index, status = key.split(":", 1)
        counts[int(index) - 1][status] = n
    keyed = [dict(zip(columns, record[:-2], strict=True)) for record in records if record[0] is not None]
    return keyed, shown, counts


_NOT_IN_CACHE = Value("", NO_VALUE, None, connected=False)


# What the live column's status, the filters and the counts need of every row (the snapshot
# columns' statuses as one text), first in each record _page_with_live reads.
_LIVE_NEEDS = ("name", "address", "abs_tol", "rel_tol", "severe", "statuses", "s0_id") + tuple(
    f"s0_{name}" for name in ("kind", "num", "str", "array", "connected")
)


def _page_with_live(comparison, base, params, order, offset, limit) -> tuple[list[dict], int, list[dict]]:
    """Every filtered row from the database, its live column's status from Redis, then the status
    filters, the counts and the page in Python.

    The rows travel as tuples, the statuses of their snapshot columns as one text (a dict and a
    text[] per row cost 50,000 rows more than the query: docs/benchmarks.md, "N-way"), and rows
    share few combinations of statuses: the counts and the status filters work on those. Only
    the page's rows become dicts."""
    snapshot_count = len(comparison.columns) - 1
    rest = [column for column in _keyed_columns(snapshot_count) if column not in _LIVE_NEEDS]
    selected = ", ".join(_LIVE_NEEDS).replace("statuses", "array_to_string(statuses, ' ', '')") + ", " + ", ".join(rest)
    with analytic_cursor() as cursor:
        cursor.execute(f"{base} SELECT {selected} FROM keyed {order}", params)
        records = cursor.fetchall()
    values = live.read_values([record[1] for record in records if record[1]])
    least = comparison.min_severity
    combinations = Counter()  # (the snapshot columns' statuses, the live status): rows
    shown = []
    for record in records:
        name, address, abs_tol, rel_tol, severe, statuses, s0_id, kind, num, text, array, connected = record[:12]
        saved = None if s0_id is None else Value(name, kind, from_columns(kind, num, text, array), connected=connected)
        value = values.get(address) if address else None
        sample = (value or _NOT_IN_CACHE) if address else None
        status = None if saved is None and sample is None else comparison_status(saved, sample, abs_tol, rel_tol)
        if least is not None and not (severe or (value is not None and value.connected and value.severity >= least)):
            continue
        combinations[statuses, status] += 1
        shown.append((record, (statuses, status)))
    every = {}  # combination: each column's status
    for statuses, status in combinations:
        every[statuses, status] = [part or None for part in statuses.split(" ")] if snapshot_count else []
        every[statuses, status].insert(comparison.live_index, status)
    counts = [{status.value: 0 for status in ComparisonStatus} for _ in comparison.columns]
    for combination, n in combinations.items():
        for column, status in enumerate(every[combination]):
            if status is not None:
                counts[column][status] += n
    shows = {combination: comparison.shows(statuses) for combination, statuses in every.items()}
    if not all(shows.values()):
        shown = [entry for entry in shown if shows[entry[1]]]
    page = []
    for record, combination in shown[offset : None if limit is None else offset + limit]:
        keyed = dict(zip((*_LIVE_NEEDS, *rest), record, strict=True))
        keyed["statuses"] = every[combination]
        page.append(keyed)
    return page, len(shown), counts


# The page's rows, in full --------------------------------------------------------------------

# The SnapshotValue columns of a value, of its display and of its readback, in _saved_values's
# order (the CSV export's _CSV_DETAIL leaves out the alarms and times).
_VALUE = ("value_type", "setpoint_num", "setpoint_str", "setpoint_array")
_DISPLAY = ("units", "precision", "reason")
_READBACK = ("readback_name", "readback_num", "readback_str", "readback_array")
_DETAIL = (
    "id",
    *_VALUE,
    "connected",
    "severity",
    "status",
    "date_part('epoch', timestamp)",
    *_DISPLAY,
    *_READBACK,
    "readback_severity",
    "readback_status",
    "date_part('epoch', readback_timestamp)",
)


def _saved_values(ids: list[int]) -> dict[int, Shown]:
    """The saved sides (with readbacks) of SnapshotValue ids."""
    if not ids:
        return {}
    with analytic_cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(_DETAIL)} FROM {_VALUES_TABLE} WHERE id = ANY(%s)", [ids])
        records = cursor.fetchall()
    sides = {}
    for pk, kind, num, text, array, connected, sev, alarm, ts, units, precision, reason, *readback in records:
        side = Shown(
            "",
            kind,
            from_columns(kind, num, text, array),
            alarm,
            sev,
            ts,
            connected=connected,
            label=saved_label(kind, text),
            units=units or "",
            precision=precision,
            reason=reason or "",
        )
        rb_name, rb_num, rb_text, rb_array, rb_sev, rb_alarm, rb_ts = readback
        if rb_name:
            side.readback = saved_readback(side, rb_name, rb_num, rb_text, rb_array, rb_sev, rb_alarm)
            side.readback.timestamp = rb_ts
        sides[pk] = side
    return sides


def _live_sides(keyed: list[dict]) -> dict[str, Shown]:
    """The live side (with its readback) of each row's setpoint address, with units, precision
    and enum labels from the monitor's metadata."""
    addresses = [record["address"] for record in keyed if record["address"]]
    readbacks = [record["readback_address"] for record in keyed if record["address"] and record["readback_address"]]
    if not addresses:
        return {}
    values, metas, readback_values = live.read_values_and_metadata(addresses, extra_values=readbacks)
    sides = {}
    for record in keyed:
        address = record["address"]
        if not address:
            continue
        side = _live_side(address, values.get(address))
        meta = metas.get(address)
        if meta is not None:
            side.units, side.precision = meta.units, meta.precision
        if record["readback_address"]:
            readback = _live_side(record["readback_address"], readback_values.get(record["readback_address"]))
            if meta is not None:
                readback.units, readback.precision = meta.units, meta.precision
            side.readback = readback
        for shown in (side, side.readback):
            if shown is not None and meta is not None and shown.value is not None:
                shown.label = label_of(shown, meta)
        sides[address] = side
    return sides


def _rows(comparison: NWayComparison, keyed: list[dict]) -> list[NWayRow]:
    snapshot_count = sum(column is not None for column in comparison.columns)
    ids = [record[f"s{i}_id"] for record in keyed for i in range(snapshot_count + 1)]
    saved = _saved_values([pk for pk in ids if pk is not None])
    live_sides = _live_sides(keyed) if comparison.live_index is not None else {}
    rows = []
    for record in keyed:
        reference = saved.get(record["s0_id"])
        cells, snapshot = [], 0
        for column, status in zip(comparison.columns, record["statuses"], strict=True):
            if column is None:
                side = live_sides.get(record["address"]) if record["address"] else None
            else:
                snapshot += 1
                side = saved.get(record[f"s{snapshot}_id"])
            cell = ComparisonRow(
                name=record["name"],
                pv_id=record["pv_id"],
                device=record["device"] or "",
                status=status,
                a=reference,
                b=side,
                abs_tolerance=record["abs_tol"],
                rel_tolerance=record["rel_tol"],
            )
            _set_delta(cell)
            cells.append(cell)
        rows.append(
            NWayRow(
                record["name"],
                record["pv_id"],
                record["device"] or "",
                record["abs_tol"],
                record["rel_tol"],
                reference,
                cells,
            )
        )
    return rows


# CSV ------------------------------------------------------------------------------------------


def column_label(column: Snapshot | None) -> str:
    """A column's name in headers: "#12" for a snapshot, "live"."""
    return "live" if column is None else f"#{column.pk}"


def csv_header(comparison: NWayComparison) -> list[str]:
    header = ["pv_name", "device", f"reference #{comparison.reference.pk}", "reference readback"]
    for column in comparison.columns:
        label = column_label(column)
        header += [label, f"{label} readback", f"{label} delta", f"{label} status"]
    return header + ["abs_tolerance", "rel_tolerance"]


def _full(side: Shown | None) -> str:
    return side.full_display if side is not None else ""


# The export writes 50,000 rows of up to 9 values, readbacks and 8 deltas: each saved value's text
# is made once, straight from its database row, without building Shown and ComparisonRow objects;
# the common shapes (numbers, labelled kinds, text, float arrays of finite values; which kinds
# they are, their specs say) are formatted here the way format_value / format_delta do, with
# number_text's own precompiled formats (squirrel_site.epics_values.NUMBER_FORMATS), anything
# else goes through them. test_nway_csv holds the file's bytes to theirs.

_CSV_DETAIL = ("id", *_VALUE, *_DISPLAY, *_READBACK)


def _plain(values) -> bool:
    """True if every element is a finite float below FIXED_POINT_LIMIT (NaN fails every comparison;
    an array's NULL element, None, is no float)."""
    return all(type(x) is float and -FIXED_POINT_LIMIT < x < FIXED_POINT_LIMIT for x in values)


@dataclass(frozen=True, slots=True)
class _Shapes:
    """The kinds of each shape the export formats itself, read from their specs (not their names)
    once per chunk: floats and float arrays compared as numbers, integers, labelled kinds, text."""

    floats: frozenset[str]
    float_arrays: frozenset[str]
    integers: frozenset[str]
    labelled: frozenset[str]
    texts: frozenset[str]

    @classmethod
    def of_specs(cls) -> _Shapes:
        return cls(
            floats=kinds(compare=NUMBER, element=float, column=NUM),
            float_arrays=kinds(compare=NUMBER_ARRAY, element=float, column=ARRAY),
            integers=kinds(compare=NUMBER, element=int, labelled=False),
            labelled=kinds(labelled=True),
            texts=kinds(element=str, array=False) - kinds(compare=STRUCT),  # a structure's text is a table
        )


def _value_text(shapes: _Shapes, kind: str, value, label, units: str, precision, reason: str) -> tuple[str, bool]:
    """(format_value(side, full=True), whether value is plain: a finite float or float array
    below FIXED_POINT_LIMIT, whose deltas _delta_text may format directly)."""
    if kind in shapes.floats and type(value) is float and -FIXED_POINT_LIMIT < value < FIXED_POINT_LIMIT:
        text = NUMBER_FORMATS[precision](value)
        return (f"{text} {units}" if units else text), True
    if value is None:
        return reason or "disconnected", False
    if kind in shapes.labelled:
        return (label if label is not None else str(value)), False
    if kind in shapes.texts:
        return str(value), False
    if kind in shapes.float_arrays and type(value) is list:
        # Waveforms mostly repeat from snapshot to snapshot and in their readbacks: each made once.
        # (Not with a zero: 0.0 and -0.0 are one key, and two texts.)
        key = (precision, units, *value) if 0.0 not in value else None
        known = _ARRAY_TEXTS.get(key)
        if known is not None:
            return known, True
        if _plain(value):
            text = "[" + ", ".join(map(NUMBER_FORMATS[precision], value)) + "]"
            text = f"{text} {units}" if units else text
            if key is not None:
                _ARRAY_TEXTS[key] = text
            return text, True
    if kind in shapes.integers and type(value) is int:
        return (f"{value} {units}" if units else str(value)), False
    side = Shown("", kind, value, label=label, units=units, precision=precision, reason=reason)
    return format_value(side, full=True), False


_ARRAY_TEXTS: dict[tuple, str] = {}  # a chunk's float arrays' texts by (precision, units, *elements)


@dataclass(slots=True)
class _Saved:
    """A saved value as the export needs it: its kind, value, precision and texts."""

    kind: str
    value: object
    precision: int | None
    plain: bool
    integer: bool  # of a kind compared as a number whose values are integers
    text: str
    readback: str


def _same_nonzero(other, value) -> bool:
    """True if `other` equals the plain float or float array `value`, and neither holds a zero
    (0.0 == -0.0, but they are written "0.00" and "-0.00")."""
    if type(value) is list:
        return other == value and 0.0 not in value
    return other == value and value != 0.0


def _saved_texts(ids: list[int]) -> dict[int, _Saved]:
    """The export's view of SnapshotValue ids: each value's and readback's text, made once."""
    if not ids:
        return {}
    # The ids as one array literal: psycopg adapts 18,000 ints one by one.
    literal = "{" + ",".join(map(str, ids)) + "}"
    with analytic_cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(_CSV_DETAIL)} FROM {_VALUES_TABLE} WHERE id = ANY(%s::bigint[])", [literal])
        records = cursor.fetchall()
    saved = {}
    shapes = _Shapes.of_specs()
    floats, float_arrays, labelled = shapes.floats, shapes.float_arrays, shapes.labelled
    _ARRAY_TEXTS.clear()
    for pk, kind, num, text, array, units, precision, reason, rb_name, rb_num, rb_text, rb_array in records:
        units = units or ""
        # from_columns of a float: the array column of one saved before arrays had a kind of their own.
        value = (array if array is not None else num) if kind in floats else from_columns(kind, num, text, array)
        label = text if kind in labelled else None
        shown, plain = _value_text(shapes, kind, value, label, units, precision, reason or "")
        readback = ""
        if rb_name and plain and _same_nonzero(rb_array if rb_array is not None else rb_num, value):
            readback = shown  # a readback equal to its setpoint
        elif rb_name:
            if kind in floats or kind in float_arrays:
                rb_value = rb_array if rb_array is not None else rb_num
            else:
                rb_value = from_columns(kind, rb_num, rb_text, rb_array)
            rb_reason = "" if rb_value is not None else "no readback saved"
            rb_label = rb_text if kind in labelled else None
            readback = _value_text(shapes, kind, rb_value, rb_label, units, precision, rb_reason)[0]
        saved[pk] = _Saved(kind, value, precision, plain, kind in shapes.integers, shown, readback)
    _ARRAY_TEXTS.clear()
    return saved


def _delta_text(a: _Saved, b: _Saved, status: str, abs_tolerance: float, rel_tolerance: float) -> str:
    """format_delta(full=True) of a ComparisonRow of `a` against `b` whose status is COMPARED."""
    if a.plain and b.plain and a.kind == b.kind:
        fmt = NUMBER_FORMATS[a.precision]
        if type(a.value) is float:
            d = b.value - a.value
            if -FIXED_POINT_LIMIT < d < FIXED_POINT_LIMIT:
                return "+" + fmt(d) if d > 0 else fmt(d)
            return delta_text(d, a.precision)
        if len(a.value) != len(b.value):
            return ""
        if a.value == b.value and 0.0 not in a.value:  # each y - x is 0.0 (-0.0 - 0.0 would be -0.0)
            return "[" + ", ".join([fmt(0.0)] * len(a.value)) + "]"
        deltas = [y - x for x, y in zip(a.value, b.value, strict=True)]
        if _plain(deltas):
            return "[" + ", ".join(["+" + fmt(d) if d > 0 else fmt(d) for d in deltas]) + "]"
        return "[" + ", ".join([delta_text(d, a.precision) for d in deltas]) + "]"
    if a.integer and a.kind == b.kind and type(a.value) is int and type(b.value) is int:
        d = float(b.value) - float(a.value)
        if -FIXED_POINT_LIMIT < d < FIXED_POINT_LIMIT:
            fmt = NUMBER_FORMATS[a.precision]
            return "+" + fmt(d) if d > 0 else fmt(d)
    row = ComparisonRow("", None, "", status, _side(a), _side(b), abs_tolerance, rel_tolerance)  # (structures)
    _set_delta(row)
    return _full_delta(row)


def _full_delta(cell: ComparisonRow) -> str:
    """A cell's Δ in the CSV: format_delta(full=True), and for an NTTable out of tolerance, after
    how it differs, each differing element beside the reference's (``setpoint[1]: 2 → 2.5``), as
    the page shows its columns side by side."""
    text = cell.delta_full_display
    if cell.status != ComparisonStatus.OUT_OF_TOLERANCE or compare_of(cell.kind) != STRUCT:
        return text
    columns = columns_side_by_side(cell.a.value, [cell.b.value], cell.abs_tolerance, cell.rel_tolerance) or []
    changes = [f"{name}[{index}]: {a} → {cells[0][0]}" for name, rows in columns for index, a, cells in rows]
    return "; ".join(part for part in (text, *changes) if part)


def _side(saved: _Saved) -> Shown:
    return Shown("", saved.kind, saved.value, precision=saved.precision)


def _csv_rows(comparison: NWayComparison, keyed: list[dict]) -> list[list[str]]:
    """The CSV rows of `keyed` (csv_header order), as csv_cells(NWayRow) writes them."""
    snapshot_count = sum(column is not None for column in comparison.columns)
    ids = [record[f"s{i}_id"] for record in keyed for i in range(snapshot_count + 1)]
    saved = _saved_texts([pk for pk in ids if pk is not None])
    live_rows = {}
    if comparison.live_index is not None:
        live_rows = {id(record): row for record, row in zip(keyed, _rows(comparison, keyed), strict=True)}
    tolerance_texts = {}
    rows = []
    empty = ("", "")
    for record in keyed:
        reference = saved.get(record["s0_id"])
        cells = [record["name"], record["device"] or ""]
        cells += (reference.text, reference.readback) if reference is not None else empty
        snapshot = 0
        for index, (column, status) in enumerate(zip(comparison.columns, record["statuses"], strict=True)):
            if column is None:
                cell = live_rows[id(record)].cells[index]
                live_side = cell.b
                cells += (_full(live_side), _full(live_side.readback if live_side else None))
                cells += (_full_delta(cell), cell.status_label if cell.status else "")
                continue
            snapshot += 1
            side = saved.get(record[f"s{snapshot}_id"])
            cells += (side.text, side.readback) if side is not None else empty
            if status in COMPARED:
                cells.append(_delta_text(reference, side, status, record["abs_tol"], record["rel_tol"]))
                cells.append(_STATUS_LABELS[status])
            else:
                cells.append("")
                cells.append(_STATUS_LABELS[status] if status else "")
        for tolerance in (record["abs_tol"], record["rel_tol"]):
            text = tolerance_texts.get(tolerance)
            if text is None:
                text = tolerance_texts[tolerance] = number_text(tolerance)
            cells.append(text)
        rows.append(cells)
    return rows


def csv_cells(row: NWayRow) -> list[str]:
    """A row's cells in csv_header order (arrays in full, deltas signed with their units)."""
    reference = row.reference
    cells = [row.name, row.device, _full(reference), _full(reference.readback if reference else None)]
    for cell in row.cells:
        side = cell.b
        cells += [
            _full(side),
            _full(side.readback if side else None),
            _full_delta(cell),
            cell.status_label if cell.status else "",
        ]
    return cells + [number_text(row.abs_tolerance), number_text(row.rel_tolerance)]


def _every_keyed_row(comparison: NWayComparison) -> list[dict]:
    """Every row of `comparison` that passes its filters, by name, with what _csv_rows reads:
    _keyed_page's rows without its counts (which the export does not write). Without a live
    column, the statuses travel as one text per row (a text[] per row costs more to read than
    the query) and rows with the same statuses share one list."""
    if comparison.live_index is not None:
        return _keyed_page(comparison, 0, None)[0]
    sides = [comparison.reference.pk] + [column.pk for column in comparison.columns]
    base, params = _keyed_query(comparison, sides)
    condition, condition_params = _status_condition(comparison)
    columns = ["name", "device", "abs_tol", "rel_tol", *(f"s{i}_id" for i in range(len(sides)))]
    order = f'ORDER BY name COLLATE "C" {"DESC" if comparison.descending else "ASC"}'
    selected = f"{', '.join(columns)}, array_to_string(statuses, ' ', '')"
    with analytic_cursor() as cursor:
        cursor.execute(f"{base} SELECT {selected} FROM keyed {condition} {order}", params + condition_params)
        records = cursor.fetchall()
    lists = {}  # statuses text: each column's status
    keyed = []
    for *record, statuses in records:
        row = dict(zip(columns, record, strict=True))
        row["statuses"] = lists.get(statuses) or lists.setdefault(statuses, [s or None for s in statuses.split(" ")])
        keyed.append(row)
    return keyed


def write_nway_csv(comparison: NWayComparison, stream) -> int:
    """Every row of `comparison` that passes its filters, by name, as CSV; the row count.

    One comparison query; the rows' values are then fetched, built and written CSV_CHUNK rows at
    a time, so that 50,000 rows of 9 values never sit in memory at once."""
    keyed = _every_keyed_row(comparison)
    writer = safe_csv.writer(stream)
    writer.writerow(csv_header(comparison))
    for start in range(0, len(keyed), CSV_CHUNK):
        writer.writerows(_csv_rows(comparison, keyed[start : start + CSV_CHUNK]))
    return len(keyed)
