"""Drift: the live machine against a snapshot (the golden one by default), counted per tag group
and tag. The statuses are those of snapshots.comparison.rows against live values."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from pvs.models import PV
from snapshots.capture.models import Snapshot
from snapshots.comparison.rows import Comparison, analytic_cursor, live_statuses
from snapshots.comparison.rules import STATUS_RANK, ComparisonStatus
from tags.models import Tag, TagGroup


def golden_snapshot() -> Snapshot | None:
    """The newest snapshot tagged golden, or None."""
    return Snapshot.objects.golden().order_by("-created_at", "-id").first()


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

    The statuses come from Python (snapshots.comparison.rules); PostgreSQL counts them per tag, given as
    two arrays. A PV with two tags of one group counts once in the group. Raises redis.RedisError.
    """
    statuses = live_statuses(Comparison(a=snapshot))
    tagged = [(pv_id, status) for pv_id, status in statuses if pv_id is not None]
    totals = DriftLine(0, "All PVs", Counter(status for _, status in statuses))
    groups = {group.id: DriftGroup(group.id, group.name) for group in TagGroup.objects.all()}
    tags = {}
    for tag in Tag.objects.order_by("name"):
        tags[tag.id] = DriftLine(tag.id, tag.name)
        groups[tag.group_id].tags.append(tags[tag.id])
    for level, line_id, status, count in _counts_per_tag([pv for pv, _ in tagged], [status for _, status in tagged]):
        (tags if level == "tag" else groups)[line_id].counts[status] = count
    for group in groups.values():
        group.tags = [tag for tag in group.tags if tag.pvs]
    return DriftSummary(snapshot, totals, [group for group in groups.values() if group.pvs])


def _counts_per_tag(pv_ids: list[int], statuses: list[str]) -> list[tuple[str, int, str, int]]:
    """("tag" or "group", its id, status, PVs) for the PVs and statuses given (parallel lists).

    Statuses travel as their STATUS_RANK numbers: two arrays of 50,000 numbers cost less to send
    and group than text.
    """
    links = PV.tags.through._meta.db_table
    names = {rank: status for status, rank in STATUS_RANK.items()}
    with analytic_cursor() as cursor:
        cursor.execute(
            f"""WITH rows AS (SELECT * FROM unnest(%s::bigint[], %s::int2[]) AS r(pv_id, status)),
                tagged AS (SELECT r.pv_id, r.status, t.id AS tag_id, t.group_id FROM rows r
                           JOIN {links} l ON l.pv_id = r.pv_id JOIN {Tag._meta.db_table} t ON t.id = l.tag_id)
            SELECT 'tag', tag_id, status, count(*) FROM tagged GROUP BY tag_id, status
            UNION ALL
            SELECT 'group', group_id, status, count(*) FROM (SELECT DISTINCT group_id, pv_id, status FROM tagged) d
            GROUP BY group_id, status""",
            [pv_ids, [STATUS_RANK[status] for status in statuses]],
        )
        return [(level, line_id, names[rank], count) for level, line_id, rank, count in cursor.fetchall()]
