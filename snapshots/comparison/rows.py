"""Comparing a snapshot with another snapshot or with live values: rows, counts and CSV.

Snapshot against snapshot is one PostgreSQL query: a FULL OUTER JOIN of the two snapshots'
values on the PV name, joined to the registry for the current tolerances (which the caller may
override) and the device. The status of every row is computed in SQL
(snapshots.comparison.rules_sql, which follows the rules of snapshots.comparison.rules), so
filtering, counting, sorting and paging 50,000 rows happen in the database and only one page
travels to Python.

Snapshot against live values takes the snapshot's rows from PostgreSQL and the live values from
Redis (monitor.live), and applies snapshots.comparison.rules in Python. When nothing needs every
row (sorting by name or device, no status or severity filter, no counts) only the page's
addresses are read; otherwise every address of the selection (see docs/benchmarks.md for the cost).

Row `a` is the reference: deltas are b - a and relative tolerances scale with |a|. A PV deleted
from the registry keeps its saved rows (compared with tolerance 0, unless overridden); against
live values it is ONLY_IN_A, since nothing monitors it any more.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import QuerySet

from monitor import live
from pvs.models import PV
from pvs.selections import name_condition, selected_ids_array
from snapshots.capture.models import Severity, Snapshot, SnapshotValue
from snapshots.comparison import rules_sql as sql
from snapshots.comparison.rules import (
    EXACT_ARRAY,
    MATCHING_STATUSES,
    STATUS_RANK,
    STRUCT,
    ComparisonStatus,
    comparison_status,
    delta,
    magnitude,
    numbers_within_tolerance,
    structure_differences,
    table_cells,
)
from snapshots.comparison.structure_pairs import structure_pairs
from squirrel_site import epics_values as ev
from squirrel_site import safe_csv
from squirrel_site.bulk_sql import local_settings, set_join
from squirrel_site.epics_values import Value, from_columns, number_text, saved_label, to_json

SORT_FIELDS = ("name", "device", "delta", "status", "severity")
SORT_CHOICES = [
    (f"{prefix}{name}", f"{name}{suffix}")
    for name in SORT_FIELDS
    for prefix, suffix in (("", ""), ("-", ", descending"))
]
COMPARED = frozenset(
    {ComparisonStatus.EQUAL.value, ComparisonStatus.WITHIN.value, ComparisonStatus.OUT_OF_TOLERANCE.value}
)
ELEMENTS_SHOWN = 20  # differing array elements listed under a row

# Used 50,000 times a comparison: plain strings and dicts, not enum members.
NO_VALUE = ev.NO_VALUE
_SEVERITY_LABELS = dict(Severity.choices)
_STATUS_LABELS = dict(ComparisonStatus.choices)

_VALUES_TABLE = SnapshotValue._meta.db_table
_PV_TABLE = PV._meta.db_table


@dataclass(frozen=True, kw_only=True)
class RowFilters:
    """The tolerance overrides and row filters of a comparison, two-way or N-way (keywords only).

    `abs_tolerance` / `rel_tolerance` replace every PV's own (each on its own; None keeps the
    PV's). `pvs` is a registry selection (a PV queryset, e.g. PVFilterSet(...).qs; rows of deleted
    PVs never match one); `name` a substring of the PV name; `min_severity` the least alarm
    severity on either side; `statuses` the statuses to show (empty: all); `differences_only`
    hides EQUAL and WITHIN.
    """

    abs_tolerance: float | None = None
    rel_tolerance: float | None = None
    pvs: QuerySet | None = None
    name: str = ""
    min_severity: int | None = None
    statuses: frozenset[str] = frozenset()
    differences_only: bool = False


@dataclass(frozen=True)
class Comparison(RowFilters):
    """What to compare and which rows to show.

    `b` None compares with live values; the filters are RowFilters'. `sort` is one of
    SORT_CHOICES.
    """

    a: Snapshot
    b: Snapshot | None = None
    sort: str = "name"

    def __post_init__(self):
        if self.sort.lstrip("-") not in SORT_FIELDS:
            raise ValueError(f"unknown sort {self.sort!r}: use one of {', '.join(SORT_FIELDS)}")

    @property
    def live(self) -> bool:
        return self.b is None

    def shows(self, status: str) -> bool:
        """True if rows of `status` pass the status filters."""
        if self.differences_only and status in MATCHING_STATUSES:
            return False
        return not self.statuses or status in self.statuses


@dataclass(slots=True)
class Shown(Value):
    """One side of a row, a saved value or a live one: the one squirrel_site.epics_values.Value
    (its kind, value, alarm status and severity, IOC timestamp, connected), with what only its
    display needs. Unknown alarm fields and timestamps are None here (a saved row without them, a
    value not in the cache), not the Value's 0; `address` is the live address (a live side and a
    readback only: "" for a saved setpoint)."""

    status: int | None = None  # alarm status
    severity: int | None = None
    timestamp: float | None = None  # IOC time, Unix seconds
    label: str | None = None  # a labelled kind's (an enum's) label
    units: str = ""
    precision: int | None = None
    reason: str = ""  # why there is no value
    readback: Shown | None = None  # the readback's value (kind, units and precision the setpoint's)

    @property
    def display(self) -> str:
        """The value as a table cell shows it (arrays shortened)."""
        return format_value(self, full=False)

    @property
    def full_display(self) -> str:
        """The value as the CSV export writes it (arrays in full)."""
        return format_value(self, full=True)


@dataclass(slots=True)
class ComparisonRow:
    """One PV of a comparison."""

    name: str
    pv_id: int | None
    device: str
    status: str
    a: Shown | None
    b: Shown | None
    abs_tolerance: float
    rel_tolerance: float
    delta: float | list | None = None
    magnitude: float | None = None

    @property
    def kind(self) -> str:
        return (self.a or self.b).kind

    @property
    def severity(self) -> int | None:
        known = [side.severity for side in (self.a, self.b) if side is not None and side.severity is not None]
        return max(known) if known else None

    @property
    def severity_label(self) -> str:
        return _SEVERITY_LABELS.get(self.severity, "")

    @property
    def status_label(self) -> str:
        return _STATUS_LABELS[self.status]

    @property
    def delta_display(self) -> str:
        return format_delta(self, full=False)

    @property
    def delta_full_display(self) -> str:
        return format_delta(self, full=True)

    @property
    def differences(self) -> list[str]:
        """How two structures out of tolerance differ, a line each (snapshots.comparison.rules,
        structure_differences: columns, row count, "column `setpoint`: rows 2, 5 differ"); none
        for other kinds and other statuses."""
        if self.status != ComparisonStatus.OUT_OF_TOLERANCE or ev.compare_of(self.kind) != STRUCT:
            return []
        return structure_differences(self.a.value, self.b.value, self.abs_tolerance, self.rel_tolerance)

    @property
    def table(self):
        """Two tables of the same columns side by side (rules.table_cells), None for other rows."""
        if self.status not in COMPARED or ev.compare_of(self.kind) != STRUCT:
            return None
        return table_cells(self.a.value, self.b.value, self.abs_tolerance, self.rel_tolerance)

    @property
    def differing_elements(self) -> list[tuple[int, str, str, str]]:
        """(index, a, b, b - a) as text, of array elements outside tolerance; at most ELEMENTS_SHOWN.
        Arrays of strings: the elements that differ, quoted, without a delta."""
        if self.status == ComparisonStatus.OUT_OF_TOLERANCE and ev.compare_of(self.kind) == EXACT_ARRAY:
            return _differing_strings(ev.as_list(self.a.value), ev.as_list(self.b.value))
        if not isinstance(self.delta, list):
            return []
        precision = self.a.precision
        differing = []
        for i, (x, y, d) in enumerate(
            zip(ev.as_list(self.a.value), ev.as_list(self.b.value), self.delta, strict=False)
        ):
            if not numbers_within_tolerance(float(x), float(y), self.abs_tolerance, self.rel_tolerance):
                differing.append((i, number_text(x, precision), number_text(y, precision), ev.delta_text(d, precision)))
                if len(differing) == ELEMENTS_SHOWN:
                    break
        return differing


@dataclass
class ComparisonPage:
    """One page of rows; `total` rows pass the filters; `counts` per status over the rows that
    pass every filter but the status ones (None when the live path did not read every row)."""

    rows: list[ComparisonRow]
    total: int
    counts: dict[str, int] | None
    read_at: float = field(default_factory=time.time)


def compare(
    comparison: Comparison, *, offset: int = 0, limit: int | None = 100, with_counts: bool = True
) -> ComparisonPage:
    """The rows of `comparison` from `offset`, at most `limit` (None: all), sorted.

    Raises redis.RedisError when live values are needed and Redis cannot be reached.
    """
    if comparison.live:
        return _compare_live(comparison, offset, limit, with_counts)
    return _compare_snapshots(comparison, offset, limit, with_counts)


# Snapshot against snapshot, in SQL ----------------------------------------------------------------

_SIDE = {
    "kind": "value_type",
    "num": "setpoint_num",
    "str": "setpoint_str",
    "array": "setpoint_array",
    "connected": "connected",
    "severity": "severity",
    "alarm": "status",
    "timestamp": "timestamp",
    "units": "units",
    "precision": "precision",
    "reason": "reason",
    "rb_name": "readback_name",
    "rb_num": "readback_num",
    "rb_str": "readback_str",
    "rb_array": "readback_array",
    "rb_severity": "readback_severity",
    "rb_alarm": "readback_status",
}
_SIDE_COLUMNS = tuple(_SIDE)


def _side_select(alias: str) -> str:
    # Timestamps as Unix seconds: loading 50,000 timestamptz values costs ~0.2 s in Python, floats nothing.
    return ", ".join(
        f"date_part('epoch', {alias}.{column}) AS {alias}_{name}"
        if name == "timestamp"
        else f"{alias}.{column} AS {alias}_{name}"
        for name, column in _SIDE.items()
    )


def _registry_filters(comparison: Comparison, pv_column: str, name_column: str) -> tuple[list[str], list]:
    """WHERE conditions (and their parameters) for the registry selection and the name filter."""
    conditions, params = [], []
    if comparison.pvs is not None:  # a constant array: no plan joins the selection's tables row by row
        conditions.append(f"{pv_column} = ANY(%s::bigint[])")
        params.append(selected_ids_array(comparison.pvs))
    if comparison.name:
        condition, name_params = name_condition(name_column, comparison.name)
        conditions.append(condition)
        params += name_params
    return conditions, params


# What a row's status depends on, per side: name in the query -> SnapshotValue column.
STATUS_SIDE = {name: _SIDE[name] for name in ("kind", "num", "str", "array", "connected", "severity")}


def _pair_query(comparison: Comparison) -> tuple[str, list]:
    """CTEs ending in `keyed`: every row of the two snapshots that passes the filters but the
    status ones, with its status and sort key, materialized once for the counts and the page.

    `keyed` is narrow (ids, name, status, key, tolerances): sorting and counting 50,000 wide rows
    (arrays, units, ...) took twice as long; the page's 100 rows get their values by id after.
    """
    # The selection on the values' PV id: on the registry's, the planner applied it to the registry
    # scan and, the values estimated at one row with stale statistics, joined it in a nested loop.
    conditions, params = _registry_filters(comparison, "any_pv", "name")
    if comparison.min_severity is not None:
        conditions.append("greatest(a_severity, b_severity) >= %s")
        params.append(comparison.min_severity)
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    sides = ", ".join(f"{side}.{_SIDE[name]} AS {side}_{name}" for side in "ab" for name in STATUS_SIDE)
    query = f"""
        WITH pair AS (
            SELECT coalesce(a.pv_name, b.pv_name) AS name, coalesce(b.pv_id, a.pv_id) AS any_pv,
                   %s::jsonb -> coalesce(a.pv_name, b.pv_name) AS decided,
                   p.id AS pv_id, p.device AS device,
                   coalesce(%s::float8, p.abs_tolerance, 0) AS abs_tol,
                   coalesce(%s::float8, p.rel_tolerance, 0) AS rel_tol,
                   a.id AS a_id, a.id IS NOT NULL AS in_a, b.id AS b_id, b.id IS NOT NULL AS in_b, {sides}
            FROM (SELECT * FROM {_VALUES_TABLE} WHERE snapshot_id = %s) a
            FULL JOIN (SELECT * FROM {_VALUES_TABLE} WHERE snapshot_id = %s) b ON b.pv_name = a.pv_name
            LEFT JOIN {_PV_TABLE} p ON p.id = coalesce(b.pv_id, a.pv_id)
        ), filtered AS (
            SELECT * FROM pair {where}
        ), classified AS (
            SELECT filtered.*, {sql.status()} AS status FROM filtered
        ), keyed AS MATERIALIZED (
            SELECT name, pv_id, device, abs_tol, rel_tol, a_id, b_id, status, {_sort_key(comparison)} AS key
            FROM classified
        )"""
    (decided,) = structure_pairs([comparison.a.pk, comparison.b.pk])
    head = [decided, comparison.abs_tolerance, comparison.rel_tolerance, comparison.a.pk, comparison.b.pk]
    return query, head + params


def _sort_key(comparison: Comparison) -> str:
    """The SQL of the sort key of `classified` rows (NULL when sorting by name)."""
    return {
        "name": "NULL::int",
        "device": "device",
        "delta": sql.magnitude(),
        "status": sql.status_rank(),
        "severity": "greatest(a_severity, b_severity)",
    }[comparison.sort.lstrip("-")]


def _status_condition(comparison: Comparison) -> tuple[str, list]:
    shown = [status.value for status in ComparisonStatus if comparison.shows(status)]
    if len(shown) == len(ComparisonStatus):
        return "", []
    return "WHERE status = ANY(%s)", [shown]


def _order_by(comparison: Comparison, key: str = "key") -> str:
    """ORDER BY for rows with `name` and the sort key in column `key`; the name breaks ties."""
    direction = "DESC" if comparison.sort.startswith("-") else "ASC"
    if comparison.sort.lstrip("-") == "name":
        return f'ORDER BY name COLLATE "C" {direction}'
    if comparison.sort.lstrip("-") == "device":
        key = f'{key} COLLATE "C"'
    return f'ORDER BY {key} {direction} NULLS LAST, name COLLATE "C"'


def analytic_cursor():
    """A cursor in a transaction tuned for one big query over 50,000 rows.

    PostgreSQL's JIT compiles these long expressions for ~0.4 s before running them in ~0.1 s,
    and the hash of 50,000 joined rows spills to disk with the default 4 MB of work_mem. Nested
    loops stay allowed: the pair is a FULL JOIN (hash or merge only) and the rest are lookups by
    primary key (tests/test_bulk_plans.py checks the plans with stale statistics).
    """
    return local_settings(jit="off", work_mem="64MB")


_PAGE_COLUMNS = ["name", "pv_id", "device", "abs_tol", "rel_tol", "in_a", "in_b", "status"] + [
    f"{side}_{name}" for side in "ab" for name in _SIDE_COLUMNS
]


def _compare_snapshots(comparison: Comparison, offset: int, limit: int | None, with_counts: bool) -> ComparisonPage:
    base, params = _pair_query(comparison)
    status_where, status_params = _status_condition(comparison)
    window, window_params = _window(offset, limit)
    details = (
        f"page.name, page.pv_id, page.device, page.abs_tol, page.rel_tol, page.a_id IS NOT NULL,"
        f" page.b_id IS NOT NULL, page.status, {_side_select('a')}, {_side_select('b')}"
    )
    joins = f"LEFT JOIN {_VALUES_TABLE} a ON a.id = page.a_id LEFT JOIN {_VALUES_TABLE} b ON b.id = page.b_id"
    page = f"SELECT * FROM keyed {status_where} {_order_by(comparison)}{window}"
    order = _order_by(comparison, "page.key")
    counted = with_counts or limit is not None  # the counts give the total a pager needs
    with analytic_cursor() as cursor:
        if counted:
            # The counts ride along with the page (one row of NULLs and the counts when the page
            # is empty), as text, or psycopg would parse them on every row.
            cursor.execute(
                f"{base}, page AS ({page}) SELECT {details}, c.counts FROM page {joins} RIGHT JOIN"
                f" (SELECT json_object_agg(status, n)::text AS counts"
                f" FROM (SELECT status, count(*) AS n FROM keyed GROUP BY status) n) c ON true {order}",
                params + status_params + window_params,
            )
        else:
            cursor.execute(
                f"{base}, page AS ({page}) SELECT {details} FROM page {joins} {order}",
                params + status_params + window_params,
            )
        records = cursor.fetchall()
    counts = None
    if counted:
        counts = json.loads(records[0][-1] or "{}")
        records = [record for record in records if record[0] is not None]
    rows = [_pair_row(dict(zip(_PAGE_COLUMNS, record, strict=False))) for record in records]
    if counts is None:
        return ComparisonPage(rows, offset + len(rows), None)
    counts = {status.value: 0 for status in ComparisonStatus} | counts
    return ComparisonPage(rows, sum(n for status, n in counts.items() if comparison.shows(status)), counts)


def _window(offset: int, limit: int | None) -> tuple[str, list]:
    if limit is None:
        return " OFFSET %s", [offset]
    return " LIMIT %s OFFSET %s", [limit, offset]


_SIDE_KEYS = {prefix: {name: f"{prefix}_{name}" for name in _SIDE} for prefix in "ab"}


def _saved_side(record: dict, prefix: str) -> Shown | None:
    if not record[f"in_{prefix}"]:
        return None
    key = _SIDE_KEYS[prefix]
    kind, text = record[key["kind"]], record[key["str"]]
    side = Shown(
        "",
        kind,
        from_columns(kind, record[key["num"]], text, record[key["array"]]),
        record[key["alarm"]],
        record[key["severity"]],
        record[key["timestamp"]],
        connected=record[key["connected"]],
        label=saved_label(kind, text),
        units=record[key["units"]] or "",
        precision=record[key["precision"]],
        reason=record[key["reason"]] or "",
    )
    if record[key["rb_name"]]:
        side.readback = saved_readback(
            side,
            record[key["rb_name"]],
            record[key["rb_num"]],
            record[key["rb_str"]],
            record[key["rb_array"]],
            record[key["rb_severity"]],
            record[key["rb_alarm"]],
        )
    return side


def saved_readback(setpoint: Shown, name: str, num, text, array, severity, alarm) -> Shown:
    """The saved readback `name` of a saved setpoint side (its kind, units and precision)."""
    value = from_columns(setpoint.kind, num, text, array)
    return Shown(
        name,
        setpoint.kind,
        value,
        alarm,
        severity,
        connected=value is not None,
        label=saved_label(setpoint.kind, text),
        units=setpoint.units,
        precision=setpoint.precision,
        reason="" if value is not None else "no readback saved",
    )


def _pair_row(record: dict) -> ComparisonRow:
    row = ComparisonRow(
        name=record["name"],
        pv_id=record["pv_id"],
        device=record["device"] or "",
        status=record["status"],
        a=_saved_side(record, "a"),
        b=_saved_side(record, "b"),
        abs_tolerance=record["abs_tol"],
        rel_tolerance=record["rel_tol"],
    )
    _set_delta(row)
    return row


def _set_delta(row: ComparisonRow) -> None:
    if row.status in COMPARED:
        row.delta = delta(row.a.value, row.b.value, row.a.kind)
        row.magnitude = magnitude(row.delta)


# Snapshot against live values -----------------------------------------------------------------

_SAVED_COLUMNS = ("name", "pv_id", "device", "address", "readback_address", "abs_tol", "rel_tol") + tuple(
    f"a_{n}" for n in _SIDE_COLUMNS
)


def _saved_query(comparison: Comparison) -> tuple[str, list]:
    """The snapshot's rows with the registry's address, device and tolerances, filtered."""
    conditions, params = _registry_filters(comparison, "p.id", "a.pv_name")
    where = "".join(f" AND {condition}" for condition in conditions)
    query = f"""
        SELECT a.pv_name AS name, p.id AS pv_id, p.device AS device, p.setpoint_address AS address,
               p.readback_address AS readback_address, coalesce(%s::float8, p.abs_tolerance, 0) AS abs_tol,
               coalesce(%s::float8, p.rel_tolerance, 0) AS rel_tol, {_side_select("a")}
        FROM {_VALUES_TABLE} a LEFT JOIN {_PV_TABLE} p ON p.id = a.pv_id
        WHERE a.snapshot_id = %s{where}"""
    return query, [comparison.abs_tolerance, comparison.rel_tolerance, comparison.a.pk, *params]


def _needs_every_row(comparison: Comparison, with_counts: bool) -> bool:
    return (
        with_counts
        or comparison.statuses
        or comparison.differences_only
        or comparison.min_severity is not None
        or comparison.sort.lstrip("-") not in ("name", "device")
    )


def _compare_live(comparison: Comparison, offset: int, limit: int | None, with_counts: bool) -> ComparisonPage:
    query, params = _saved_query(comparison)
    if not _needs_every_row(comparison, with_counts):
        window, window_params = _window(offset, limit)
        paged = f"SELECT *, count(*) OVER () AS total FROM ({query}) saved {_order_by(comparison, 'device')}{window}"
        records = _fetch(paged, params + window_params, _SAVED_COLUMNS + ("total",))
        total = records[0]["total"] if records else _count(query, params) if offset else 0
        return ComparisonPage(_live_rows(_live_entries(records)), total, None)
    entries = _live_entries(_fetch(query, params, _SAVED_COLUMNS))
    if comparison.min_severity is not None:
        entries = [
            entry for entry in entries if entry.severity is not None and entry.severity >= comparison.min_severity
        ]
    counts = {status.value: 0 for status in ComparisonStatus} | Counter(entry.status for entry in entries)
    shown = [entry for entry in entries if comparison.shows(entry.status)]
    if comparison.sort.lstrip("-") == "delta":
        for entry in shown:
            entry.measure()
    shown = sort_rows(shown, comparison.sort)
    end = None if limit is None else offset + limit
    return ComparisonPage(_live_rows(shown[offset:end]), len(shown), counts)


def _fetch(query: str, params: list, columns: Sequence[str]) -> list[dict]:
    with set_join() as cursor:  # the snapshot's values with the registry: two whole sets
        cursor.execute(query, params)
        return [dict(zip(columns, record, strict=True)) for record in cursor.fetchall()]


def _count(query: str, params: list) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM ({query}) saved", params)
        return cursor.fetchone()[0]


_NOT_IN_CACHE = Value("", NO_VALUE, None, connected=False)


@dataclass(slots=True)
class _LiveEntry:
    """A saved record, its live value and its status: what filtering, counting and sorting 50,000
    rows need, without building the rows (_live_rows does that for the rows shown)."""

    record: dict
    saved: Value
    value: Value | None
    name: str
    pv_id: int | None
    device: str
    status: str
    severity: int | None
    magnitude: float | None = None

    def measure(self) -> None:
        """Set the magnitude of the delta (sorting by delta needs it)."""
        if self.status in COMPARED:
            self.magnitude = magnitude(delta(self.saved.value, self.value.value, self.saved.kind))


def _live_entries(records: list[dict]) -> list[_LiveEntry]:
    """Each saved record with the live value of its registry address and its status."""
    values = live.read_values([record["address"] for record in records if record["address"]])
    entries = []
    for record in records:
        kind, address, severity = record["a_kind"], record["address"], record["a_severity"]
        saved = Value(
            record["name"],
            kind,
            from_columns(kind, record["a_num"], record["a_str"], record["a_array"]),
            connected=record["a_connected"],
        )
        value = values.get(address) if address else None
        if value is not None and value.connected and (severity is None or value.severity > severity):
            severity = value.severity
        sample = (value or _NOT_IN_CACHE) if address else None
        status = comparison_status(saved, sample, record["abs_tol"], record["rel_tol"])
        entries.append(
            _LiveEntry(record, saved, value, record["name"], record["pv_id"], record["device"] or "", status, severity)
        )
    return entries


def _live_rows(entries: list[_LiveEntry]) -> list[ComparisonRow]:
    """The rows of `entries`, with deltas, and live units, precision and enum labels from Redis."""
    rows = []
    for entry in entries:
        record = entry.record
        record["in_a"] = True
        address = record["address"]
        row = ComparisonRow(
            name=entry.name,
            pv_id=entry.pv_id,
            device=entry.device,
            status=entry.status,
            a=_saved_side(record, "a"),
            b=_live_side(address, entry.value, record["readback_address"]) if address else None,
            abs_tolerance=record["abs_tol"],
            rel_tolerance=record["rel_tol"],
        )
        _set_delta(row)
        rows.append(row)
    return _with_metadata(rows)


def live_statuses(comparison: Comparison) -> list[tuple[int | None, str]]:
    """(registry PV id, status) of every row of a comparison with live values (its filters apply,
    its status filters and sorting do not). Raises redis.RedisError."""
    query, params = _saved_query(comparison)
    return [(entry.pv_id, entry.status) for entry in _live_entries(_fetch(query, params, _SAVED_COLUMNS))]


def _with_metadata(rows: list[ComparisonRow]) -> list[ComparisonRow]:
    """`rows` with their live sides' units, precision and enum labels from Redis."""
    sides = [row.b for row in rows if row.b is not None]
    readbacks = [side.readback.address for side in sides if side.readback is not None]
    if not sides:
        return rows
    _, metas, readback_values = live.read_values_and_metadata([side.address for side in sides], extra_values=readbacks)
    for side in sides:
        if side.readback is not None:
            side.readback = _live_side(side.readback.address, readback_values.get(side.readback.address))
        meta = metas.get(side.address)
        for shown in (side, side.readback):
            if shown is not None and meta is not None:
                shown.units, shown.precision = meta.units, meta.precision
                if shown.value is not None:
                    shown.label = ev.label_of(shown, meta)
    return rows


def _live_side(address: str, value: Value | None, readback_address: str = "") -> Shown:
    """The live side of `address`; with `readback_address`, a placeholder readback that
    _with_metadata reads (only the page's rows' readbacks are read)."""
    side = _live_value_side(address, value)
    if readback_address:
        side.readback = Shown(readback_address, NO_VALUE, None, connected=False)
    return side


def _live_value_side(address: str, value: Value | None) -> Shown:
    if value is None:
        return Shown(address, NO_VALUE, None, connected=False, reason="no value in the live cache")
    if not value.connected:
        return Shown(address, value.kind, None, connected=False, reason="disconnected")
    return Shown(address, value.kind, value.value, value.status, value.severity, value.timestamp or None)


def sort_rows(rows: list[ComparisonRow], sort: str) -> list[ComparisonRow]:
    """`rows` in the order the SQL of a snapshot pair gives: the key (nulls last either way),
    then the name ascending (code points, as COLLATE "C")."""
    key_name = sort.lstrip("-")
    descending = sort.startswith("-")
    rows = sorted(rows, key=lambda row: row.name)
    if key_name == "name":
        return rows[::-1] if descending else rows
    key = _SORT_KEYS[key_name]
    known = [row for row in rows if key(row) is not None]
    unknown = [row for row in rows if key(row) is None]
    return sorted(known, key=key, reverse=descending) + unknown


def _magnitude_key(row: ComparisonRow):
    # PostgreSQL sorts NaN above every number.
    return (
        None
        if row.magnitude is None
        else (math.isnan(row.magnitude), 0.0 if math.isnan(row.magnitude) else row.magnitude)
    )


_SORT_KEYS = {
    "device": lambda row: row.device if row.pv_id is not None else None,
    "delta": _magnitude_key,
    "status": lambda row: STATUS_RANK[row.status],
    "severity": lambda row: row.severity,
}


# Display and CSV ------------------------------------------------------------------------------


def format_value(side: Shown, full: bool) -> str:
    """A side's value as live values are shown (squirrel_site.epics_values.display_text: precision,
    units, enum label, arrays and long strings shortened); `full` keeps every array element and
    character (the CSV export)."""
    if side.value is None:
        return side.reason or "disconnected"
    if side.label is not None:  # a labelled kind's (an enum's) label, saved or from the channel
        return side.label
    return ev.display_text(side.kind, side.value, units=side.units, precision=side.precision, full=full)


def _differing_strings(a: list, b: list) -> list[tuple[int, str, str, str]]:
    if len(a) != len(b):
        return []
    differing = [
        (i, json.dumps(x, ensure_ascii=False), json.dumps(y, ensure_ascii=False), "")
        for i, (x, y) in enumerate(zip(a, b, strict=True))
        if x != y
    ]
    return differing[:ELEMENTS_SHOWN]


def format_delta(row: ComparisonRow, full: bool) -> str:
    """The delta column: b - a for numbers, signed, with the units (epics_values.delta_text); for
    arrays the largest |element delta| and how many elements are outside tolerance; for structures
    how they differ (ComparisonRow.differences). `full` (the
    CSV export): every element delta, without units, so that a spreadsheet reads numbers."""
    if row.delta is None:
        return "; ".join(row.differences)
    precision = row.a.precision
    units = "" if full else (row.a.units or row.b.units or "")
    if not isinstance(row.delta, list):
        return ev.delta_text(row.delta, precision, units)
    if full:
        return "[" + ", ".join(ev.delta_text(d, precision) for d in row.delta) + "]"
    if row.magnitude is None:
        return ""
    outside = sum(
        1
        for x, y in zip(ev.as_list(row.a.value), ev.as_list(row.b.value), strict=False)
        if not numbers_within_tolerance(float(x), float(y), row.abs_tolerance, row.rel_tolerance)
    )
    magnitude = number_text(row.magnitude, precision) + (f" {units}" if units else "")
    return f"max |Δ| {magnitude}, {outside} of {len(row.delta)} outside tolerance"


CSV_HEADER = ["pv_name", "device", "status", "a", "b", "delta", "abs_tolerance", "rel_tolerance", "severity"]


def csv_cells(row: ComparisonRow, full: bool = True) -> list[str]:
    """A row's cells in CSV_HEADER order; the page shows the same text (`full`=False shortens arrays)."""
    return [
        row.name,
        row.device,
        row.status_label,
        _side_text(row.a, full),
        _side_text(row.b, full),
        row.delta_full_display if full else row.delta_display,
        number_text(row.abs_tolerance),
        number_text(row.rel_tolerance),
        row.severity_label,
    ]


def _side_text(side: Shown | None, full: bool) -> str:
    if side is None:
        return ""
    return side.full_display if full else side.display


def write_csv(comparison: Comparison, stream) -> int:
    """Every row of `comparison` that passes its filters, in its order, as CSV; the row count."""
    page = compare(comparison, limit=None, with_counts=False)
    writer = safe_csv.writer(stream)
    writer.writerow(CSV_HEADER)
    writer.writerows(csv_cells(row) for row in page.rows)
    return len(page.rows)


def saved_json(side: Shown) -> str:
    """A saved value as JSON text for a live row's data-saved attribute."""
    return json.dumps(to_json(side.value))
