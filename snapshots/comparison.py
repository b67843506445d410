"""Comparing a snapshot with another snapshot or with live values: rows, counts, CSV and drift.

Snapshot against snapshot is one PostgreSQL query: a FULL OUTER JOIN of the two snapshots'
values on the PV name, joined to the registry for the current tolerances (which the caller may
override) and the device. The status of every row is computed in SQL (snapshots.comparison_sql,
which follows snapshots.compare's rules), so filtering, counting, sorting and paging 50,000 rows
happen in the database and only one page travels to Python.

Snapshot against live values takes the snapshot's rows from PostgreSQL and the live values from
Redis (monitor.live), and applies snapshots.compare in Python. When nothing needs every row
(sorting by name or device, no status or severity filter, no counts) only the page's addresses
are read; otherwise every address of the selection (50,000 in ~0.3 s).

Row `a` is the reference: deltas are b - a and relative tolerances scale with |a|. A PV deleted
from the registry keeps its saved rows (compared with tolerance 0, unless overridden); against
live values it is ONLY_IN_A, since nothing monitors it any more.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections import Counter
from contextlib import contextmanager
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection, transaction
from django.db.models import QuerySet

from monitor import live
from monitor.display import display_text, number_text
from pvs.models import PV
from snapshots import comparison_sql as sql
from snapshots.compare import (
    ARRAY_KINDS,
    MATCHING_STATUSES,
    STATUS_RANK,
    ComparisonStatus,
    comparison_status,
    delta,
    magnitude,
    numbers_within_tolerance,
)
from snapshots.models import Severity, Snapshot, SnapshotValue, ValueType, _typed
from snapshots.values import enum_label, from_datetime
from squirrel_site.json_values import json_safe
from tags.models import Tag, TagGroup

SORT_FIELDS = ("name", "device", "delta", "status", "severity")
SORT_CHOICES = [(f"{prefix}{name}", f"{name}{suffix}") for name in SORT_FIELDS
                for prefix, suffix in (("", ""), ("-", ", descending"))]  # fmt: skip
COMPARED = frozenset({ComparisonStatus.EQUAL, ComparisonStatus.WITHIN, ComparisonStatus.OUT_OF_TOLERANCE})
ELEMENTS_SHOWN = 20  # differing array elements listed under a row

_VALUES_TABLE = SnapshotValue._meta.db_table
_PV_TABLE = PV._meta.db_table


@dataclass(frozen=True)
class Comparison:
    """What to compare and which rows to show.

    `b` None compares with live values. `abs_tolerance` / `rel_tolerance` replace every PV's
    own (each on its own; None keeps the PV's). `pvs` is a registry selection (a PV queryset,
    e.g. PVFilterSet(...).qs; rows of deleted PVs never match one); `name` a substring of the PV
    name; `min_severity` the least alarm severity on either side; `statuses` the statuses to show
    (empty: all); `differences_only` hides EQUAL and WITHIN. `sort` is one of SORT_CHOICES.
    """

    a: Snapshot
    b: Snapshot | None = None
    abs_tolerance: float | None = None
    rel_tolerance: float | None = None
    pvs: QuerySet | None = None
    name: str = ""
    min_severity: int | None = None
    statuses: frozenset[str] = frozenset()
    differences_only: bool = False
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
class Side:
    """One side of a row: a saved value or a live one (the shape snapshots.compare.Sample asks)."""

    kind: str
    value: object
    connected: bool
    label: str | None = None  # an enum's label
    severity: int | None = None
    alarm_status: int | None = None
    units: str = ""
    precision: int | None = None
    reason: str = ""
    timestamp: float | None = None  # IOC time, Unix seconds
    address: str = ""

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
    a: Side | None
    b: Side | None
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
        return Severity(self.severity).label if self.severity in Severity.values else ""

    @property
    def status_label(self) -> str:
        return ComparisonStatus(self.status).label

    @property
    def delta_display(self) -> str:
        return format_delta(self, full=False)

    @property
    def delta_full_display(self) -> str:
        return format_delta(self, full=True)

    @property
    def differing_elements(self) -> list[tuple[int, object, object, float]]:
        """(index, a, b, b - a) of array elements outside tolerance, at most ELEMENTS_SHOWN."""
        if not isinstance(self.delta, list):
            return []
        pairs = zip(_as_list(self.a.value), _as_list(self.b.value), self.delta)
        differing = [(i, x, y, d) for i, (x, y, d) in enumerate(pairs)
                     if not numbers_within_tolerance(float(x), float(y), self.abs_tolerance, self.rel_tolerance)]  # fmt: skip
        return differing[:ELEMENTS_SHOWN]


@dataclass
class ComparisonPage:
    """One page of rows; `total` rows pass the filters; `counts` per status over the rows that
    pass every filter but the status ones (None when the live path did not read every row)."""

    rows: list[ComparisonRow]
    total: int
    counts: dict[str, int] | None
    read_at: float = field(default_factory=time.time)


def compare(comparison: Comparison, *, offset: int = 0, limit: int | None = 100,
            with_counts: bool = True) -> ComparisonPage:  # fmt: skip
    """The rows of `comparison` from `offset`, at most `limit` (None: all), sorted.

    Raises redis.RedisError when live values are needed and Redis cannot be reached.
    """
    if comparison.live:
        return _compare_live(comparison, offset, limit, with_counts)
    return _compare_snapshots(comparison, offset, limit, with_counts)


def golden_snapshot() -> Snapshot | None:
    """The newest snapshot tagged golden, or None."""
    return Snapshot.objects.golden().order_by("-created_at", "-id").first()


# Snapshot against snapshot, in SQL ----------------------------------------------------------------

_SIDE = {
    "kind": "value_type", "num": "setpoint_num", "str": "setpoint_str", "array": "setpoint_array",
    "connected": "connected", "severity": "severity", "alarm": "status", "timestamp": "timestamp",
    "units": "units", "precision": "precision", "reason": "reason",
}  # fmt: skip
_SIDE_COLUMNS = tuple(_SIDE)


def _side_select(alias: str) -> str:
    return ", ".join(f"{alias}.{column} AS {alias}_{name}" for name, column in _SIDE.items())


def _registry_filters(comparison: Comparison, pv_column: str, name_column: str) -> tuple[list[str], list]:
    """WHERE conditions (and their parameters) for the registry selection and the name filter."""
    conditions, params = [], []
    if comparison.pvs is not None:
        subquery, subparams = comparison.pvs.order_by().values("pk").query.sql_with_params()
        conditions.append(f"{pv_column} IN ({subquery})")
        params += subparams
    if comparison.name:
        conditions.append(f"{name_column} ILIKE %s")
        params.append(f"%{_escape_like(comparison.name)}%")
    return conditions, params


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _pair_query(comparison: Comparison) -> tuple[str, list]:
    """The classified rows of two snapshots (every column the page needs), filtered except by status."""
    conditions, params = _registry_filters(comparison, "pv_id", "name")
    if comparison.min_severity is not None:
        conditions.append("greatest(a_severity, b_severity) >= %s")
        params.append(comparison.min_severity)
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    query = f"""
        WITH pair AS (
            SELECT coalesce(a.pv_name, b.pv_name) AS name, p.id AS pv_id, p.device AS device,
                   coalesce(%s::float8, p.abs_tolerance, 0) AS abs_tol,
                   coalesce(%s::float8, p.rel_tolerance, 0) AS rel_tol,
                   a.id IS NOT NULL AS in_a, {_side_select("a")},
                   b.id IS NOT NULL AS in_b, {_side_select("b")}
            FROM (SELECT * FROM {_VALUES_TABLE} WHERE snapshot_id = %s) a
            FULL JOIN (SELECT * FROM {_VALUES_TABLE} WHERE snapshot_id = %s) b ON b.pv_name = a.pv_name
            LEFT JOIN {_PV_TABLE} p ON p.id = coalesce(b.pv_id, a.pv_id)
        ), filtered AS (
            SELECT * FROM pair {where}
        ), classified AS (
            SELECT filtered.*, {sql.status()} AS status FROM filtered
        )"""  # noqa: S608 (no user text in the SQL: values go as parameters)
    head = [comparison.abs_tolerance, comparison.rel_tolerance, comparison.a.pk, comparison.b.pk]
    return query, head + params


def _status_condition(comparison: Comparison) -> tuple[str, list]:
    shown = [status.value for status in ComparisonStatus if comparison.shows(status)]
    if len(shown) == len(ComparisonStatus):
        return "", []
    return "WHERE status = ANY(%s)", [shown]


def _order_by(comparison: Comparison) -> str:
    key = comparison.sort.lstrip("-")
    direction = "DESC" if comparison.sort.startswith("-") else "ASC"
    if key == "name":
        return f'ORDER BY name COLLATE "C" {direction}'
    expression = {
        "device": 'device COLLATE "C"',
        "delta": "magnitude",
        "status": sql.status_rank(),
        "severity": "greatest(a_severity, b_severity)",
    }[key]
    return f'ORDER BY {expression} {direction} NULLS LAST, name COLLATE "C"'


@contextmanager
def _analytic_cursor():
    """A cursor in a transaction tuned for one big query over 50,000 rows.

    PostgreSQL's JIT compiles these long expressions for ~0.4 s before running them in ~0.1 s,
    and the hash of 50,000 joined rows spills to disk with the default 4 MB of work_mem.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        cursor.execute("SET LOCAL work_mem = '64MB'")
        yield cursor


def _compare_snapshots(comparison: Comparison, offset: int, limit: int | None, with_counts: bool) -> ComparisonPage:
    base, params = _pair_query(comparison)
    status_where, status_params = _status_condition(comparison)
    columns = ["name", "pv_id", "device", "abs_tol", "rel_tol", "in_a", "in_b", "status", "magnitude"] + [
        f"{side}_{name}" for side in "ab" for name in _SIDE_COLUMNS
    ]
    window, window_params = _window(offset, limit)
    order = _order_by(comparison)
    shown = (
        f"SELECT {', '.join(columns)} FROM (SELECT classified.*, {sql.magnitude('classified.')} AS magnitude"
        f" FROM classified {status_where}) shown {order}{window}"
    )
    counts_sql = "SELECT status, count(*) AS n FROM classified GROUP BY status"
    counted = with_counts or limit is not None  # the counts give the total a pager needs
    with _analytic_cursor() as cursor:
        if counted:
            # One pass over the join: the counts ride along with the page as an InitPlan.
            cursor.execute(
                f"{base}, page AS ({shown}) SELECT page.*, (SELECT json_object_agg(status, n) FROM ({counts_sql}) c)"
                f" FROM page {order}",
                params + status_params + window_params,
            )
        else:
            cursor.execute(f"{base} {shown}", params + status_params + window_params)
        records = cursor.fetchall()
        counts = None
        if counted:
            if records:
                counts = records[0][-1]
            else:
                cursor.execute(f"{base} {counts_sql}", params)
                counts = dict(cursor.fetchall())
    rows = [_pair_row(dict(zip(columns, record))) for record in records]
    if counts is None:
        return ComparisonPage(rows, offset + len(rows), None)
    counts = {status.value: 0 for status in ComparisonStatus} | counts
    return ComparisonPage(rows, sum(n for status, n in counts.items() if comparison.shows(status)), counts)


def _window(offset: int, limit: int | None) -> tuple[str, list]:
    if limit is None:
        return " OFFSET %s", [offset]
    return " LIMIT %s OFFSET %s", [limit, offset]


def _saved_side(record: dict, prefix: str) -> Side | None:
    if not record[f"in_{prefix}"]:
        return None
    get = lambda name: record[f"{prefix}_{name}"]  # noqa: E731
    kind = get("kind")
    return Side(
        kind=kind, value=_typed(kind, get("num"), get("str"), get("array")), connected=get("connected"),
        label=get("str") if kind == ValueType.ENUM else None, severity=get("severity"),
        alarm_status=get("alarm"), units=get("units") or "", precision=get("precision"),
        reason=get("reason") or "", timestamp=_seconds(get("timestamp")),
    )  # fmt: skip


def _seconds(moment: datetime | None) -> float | None:
    return from_datetime(moment) if moment is not None else None


def _pair_row(record: dict) -> ComparisonRow:
    row = ComparisonRow(
        name=record["name"], pv_id=record["pv_id"], device=record["device"] or "", status=record["status"],
        a=_saved_side(record, "a"), b=_saved_side(record, "b"),
        abs_tolerance=record["abs_tol"], rel_tolerance=record["rel_tol"],
    )  # fmt: skip
    _set_delta(row)
    return row


def _set_delta(row: ComparisonRow) -> None:
    if row.status in COMPARED:
        row.delta = delta(row.a.value, row.b.value, row.a.kind)
        row.magnitude = magnitude(row.delta)


# Snapshot against live values -----------------------------------------------------------------

_SAVED_COLUMNS = ("name", "pv_id", "device", "address", "abs_tol", "rel_tol") + tuple(f"a_{n}" for n in _SIDE_COLUMNS)


def _saved_query(comparison: Comparison) -> tuple[str, list]:
    """The snapshot's rows with the registry's address, device and tolerances, filtered."""
    conditions, params = _registry_filters(comparison, "p.id", "a.pv_name")
    where = "".join(f" AND {condition}" for condition in conditions)
    query = f"""
        SELECT a.pv_name AS name, p.id AS pv_id, p.device AS device, p.setpoint_address AS address,
               coalesce(%s::float8, p.abs_tolerance, 0) AS abs_tol,
               coalesce(%s::float8, p.rel_tolerance, 0) AS rel_tol, {_side_select("a")}
        FROM {_VALUES_TABLE} a LEFT JOIN {_PV_TABLE} p ON p.id = a.pv_id
        WHERE a.snapshot_id = %s{where}"""  # noqa: S608
    return query, [comparison.abs_tolerance, comparison.rel_tolerance, comparison.a.pk, *params]


def _needs_every_row(comparison: Comparison, with_counts: bool) -> bool:
    return (
        with_counts or comparison.statuses or comparison.differences_only or comparison.min_severity is not None
        or comparison.sort.lstrip("-") not in ("name", "device")
    )  # fmt: skip


def _compare_live(comparison: Comparison, offset: int, limit: int | None, with_counts: bool) -> ComparisonPage:
    query, params = _saved_query(comparison)
    if not _needs_every_row(comparison, with_counts):
        window, window_params = _window(offset, limit)
        paged = f"SELECT *, count(*) OVER () AS total FROM ({query}) saved {_order_by(comparison)}{window}"
        records = _fetch(paged, params + window_params, _SAVED_COLUMNS + ("total",))
        total = records[0]["total"] if records else _count(query, params) if offset else 0
        return ComparisonPage(_live_rows(records), total, None)
    rows = _live_rows(_fetch(query, params, _SAVED_COLUMNS))
    if comparison.min_severity is not None:
        rows = [row for row in rows if (row.severity or 0) >= comparison.min_severity]
    counts = {status.value: 0 for status in ComparisonStatus} | Counter(row.status for row in rows)
    shown = sort_rows([row for row in rows if comparison.shows(row.status)], comparison.sort)
    end = None if limit is None else offset + limit
    return ComparisonPage(shown[offset:end], len(shown), counts)


def _fetch(query: str, params: list, columns: Sequence[str]) -> list[dict]:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return [dict(zip(columns, record)) for record in cursor.fetchall()]


def _count(query: str, params: list) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM ({query}) saved", params)
        return cursor.fetchone()[0]


def _live_rows(records: list[dict]) -> list[ComparisonRow]:
    """Rows comparing saved records with the live values of their registry addresses."""
    addresses = [record["address"] for record in records if record["address"]]
    values, metas, _ = live.read_values_and_metadata(addresses) if addresses else ({}, {}, {})
    rows = []
    for record in records:
        record["in_a"] = True
        a = _saved_side(record, "a")
        address = record["address"]
        b = _live_side(address, values.get(address), metas.get(address)) if address else None
        row = ComparisonRow(
            name=record["name"], pv_id=record["pv_id"], device=record["device"] or "",
            status=comparison_status(a, b, record["abs_tol"], record["rel_tol"]),
            a=a, b=b, abs_tolerance=record["abs_tol"], rel_tolerance=record["rel_tol"],
        )  # fmt: skip
        _set_delta(row)
        rows.append(row)
    return rows


def _live_side(address: str, value: live.LiveValue | None, meta: live.LiveMeta | None) -> Side:
    if value is None:
        return Side(kind=meta.kind if meta else ValueType.NONE, value=None, connected=False,
                    reason="no value in the live cache", address=address)  # fmt: skip
    label = enum_label(meta.enum_labels if meta else None, value.value) if value.kind == ValueType.ENUM else None
    return Side(
        kind=value.kind, value=value.value if value.connected else None, connected=value.connected, label=label,
        severity=value.severity if value.connected else None, alarm_status=value.status if value.connected else None,
        units=meta.units if meta else "", precision=meta.precision if meta else None,
        reason="" if value.connected else "disconnected", timestamp=value.timestamp or None, address=address,
    )  # fmt: skip


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
    return None if row.magnitude is None else (math.isnan(row.magnitude), 0.0 if math.isnan(row.magnitude) else row.magnitude)


_SORT_KEYS = {
    "device": lambda row: row.device if row.pv_id is not None else None,
    "delta": _magnitude_key,
    "status": lambda row: STATUS_RANK[row.status],
    "severity": lambda row: row.severity,
}


# Display and CSV ------------------------------------------------------------------------------


def format_value(side: Side, full: bool) -> str:
    """A side's value as monitor.display shows live values (precision, units, enum label, arrays and
    long strings shortened); `full` keeps every array element and character (the CSV export)."""
    if side.value is None:
        return side.reason or "disconnected"
    if side.kind == ValueType.ENUM:
        return side.label if side.label is not None else str(side.value)
    if full and side.kind == ValueType.STRING:
        return str(side.value)
    if full and side.kind in ARRAY_KINDS:
        text = "[" + ", ".join(number_text(x, side.precision) for x in _as_list(side.value)) + "]"
        return f"{text} {side.units}" if side.units else text
    return display_text(side, side)


def signed_number(number: float, precision: int | None) -> str:
    """A difference: number_text with a sign ("+0.50", "-2", "NaN")."""
    text = number_text(number, precision)
    return f"+{text}" if number > 0 else text


def format_delta(row: ComparisonRow, full: bool) -> str:
    """The delta column: b - a for numbers; for arrays the largest |element delta| and how many
    elements are outside tolerance (`full`: every element delta)."""
    if row.delta is None:
        return ""
    precision = row.a.precision
    if not isinstance(row.delta, list):
        return signed_number(row.delta, precision)
    if full:
        return "[" + ", ".join(signed_number(d, precision) for d in row.delta) + "]"
    if row.magnitude is None:
        return ""
    outside = sum(
        1 for x, y in zip(_as_list(row.a.value), _as_list(row.b.value))
        if not numbers_within_tolerance(float(x), float(y), row.abs_tolerance, row.rel_tolerance)
    )  # fmt: skip
    return f"max |Δ| {number_text(row.magnitude, precision)}, {outside} of {len(row.delta)} outside tolerance"


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


CSV_HEADER = ["pv_name", "device", "status", "a", "b", "delta", "abs_tolerance", "rel_tolerance", "severity"]


def csv_cells(row: ComparisonRow, full: bool = True) -> list[str]:
    """A row's cells in CSV_HEADER order; the page shows the same text (`full`=False shortens arrays)."""
    return [
        row.name, row.device, row.status_label,
        _side_text(row.a, full), _side_text(row.b, full),
        row.delta_full_display if full else row.delta_display,
        number_text(row.abs_tolerance), number_text(row.rel_tolerance), row.severity_label,
    ]  # fmt: skip


def _side_text(side: Side | None, full: bool) -> str:
    if side is None:
        return ""
    return side.full_display if full else side.display


def write_csv(comparison: Comparison, stream) -> int:
    """Every row of `comparison` that passes its filters, in its order, as CSV; the row count."""
    page = compare(comparison, limit=None, with_counts=False)
    writer = csv.writer(stream)
    writer.writerow(CSV_HEADER)
    writer.writerows(csv_cells(row) for row in page.rows)
    return len(page.rows)


# Drift: live values against a snapshot, per tag -----------------------------------------------


@dataclass
class DriftLine:
    """PVs (of the snapshot) carrying one tag, or any tag of a group, counted by status."""

    id: int
    name: str
    counts: Counter = field(default_factory=Counter)

    @property
    def pvs(self) -> int:
        return sum(self.counts.values())

    @property
    def out_of_tolerance(self) -> int:
        return self.counts[ComparisonStatus.OUT_OF_TOLERANCE]

    @property
    def disconnected(self) -> int:
        return self.counts[ComparisonStatus.DISCONNECTED]

    @property
    def type_changed(self) -> int:
        return self.counts[ComparisonStatus.TYPE_CHANGED]


@dataclass
class DriftGroup(DriftLine):
    tags: list[DriftLine] = field(default_factory=list)


@dataclass
class DriftSummary:
    """Live values against `snapshot`: totals, and counts per tag group and tag."""

    snapshot: Snapshot
    totals: DriftLine
    groups: list[DriftGroup]
    read_at: float = field(default_factory=time.time)


def drift_summary(snapshot: Snapshot) -> DriftSummary:
    """Compare every PV of `snapshot` with its live value and count statuses per tag group and tag.

    A PV with two tags of one group counts once in the group. Raises redis.RedisError.
    """
    rows = compare(Comparison(a=snapshot), limit=None).rows
    status_of = {row.pv_id: row.status for row in rows if row.pv_id is not None}
    totals = DriftLine(0, "All PVs", Counter(row.status for row in rows))
    groups: dict[int, DriftGroup] = {}
    tags: dict[int, DriftLine] = {}
    seen: set[tuple[int, int]] = set()
    for pv_id, tag_id, tag_name, group_id, group_name in _tag_links(list(status_of)):
        status = status_of[pv_id]
        group = groups.setdefault(group_id, DriftGroup(group_id, group_name))
        if tag_id not in tags:
            tags[tag_id] = DriftLine(tag_id, tag_name)
            group.tags.append(tags[tag_id])
        tags[tag_id].counts[status] += 1
        if (group_id, pv_id) not in seen:
            seen.add((group_id, pv_id))
            group.counts[status] += 1
    ordered = sorted(groups.values(), key=lambda group: group.name)
    for group in ordered:
        group.tags.sort(key=lambda tag: tag.name)
    return DriftSummary(snapshot, totals, ordered)


def _tag_links(pv_ids: list[int]) -> Iterable[tuple[int, int, str, int, str]]:
    """(pv id, tag id, tag name, group id, group name) of every tag of the given PVs."""
    links = PV.tags.through._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT l.pv_id, t.id, t.name, g.id, g.name FROM {links} l"
            f" JOIN {Tag._meta.db_table} t ON t.id = l.tag_id JOIN {TagGroup._meta.db_table} g ON g.id = t.group_id"
            f" WHERE l.pv_id = ANY(%s)",
            [pv_ids],
        )
        yield from cursor.fetchall()


def comparison_json(row: ComparisonRow) -> dict:
    """A row for the API (JSON-safe: NaN and infinities spelled out)."""

    def side(s: Side | None) -> dict | None:
        if s is None:
            return None
        return {
            "kind": s.kind, "value": json_safe(s.value), "display": s.display, "label": s.label,
            "connected": s.connected, "severity": s.severity, "status": s.alarm_status, "units": s.units,
            "precision": s.precision, "reason": s.reason, "timestamp": s.timestamp,
            **({"address": s.address} if s.address else {}),
        }  # fmt: skip

    return {
        "pv": row.pv_id, "pv_name": row.name, "device": row.device, "status": row.status,
        "kind": row.kind, "a": side(row.a), "b": side(row.b), "delta": json_safe(row.delta),
        "abs_tolerance": row.abs_tolerance, "rel_tolerance": row.rel_tolerance, "severity": row.severity,
    }  # fmt: skip


def saved_json(side: Side) -> str:
    """A saved value as JSON text for a live row's data-saved attribute."""
    return json.dumps(json_safe(side.value))

