"""Compare with the archive: a snapshot (or the live values) against the machine as the archive
had it at a time T (docs/compare.md, "Against the archive").

There is no comparison of its own: a snapshot from the archive at T (mode `archive`, taken by the
normal snapshot job, snapshots.capture) of the compared snapshot's registry PVs, then the normal
comparison — snapshot A against that archived snapshot, or the archived snapshot against live
values. The job carries which (`compare` in its data: {"a": <snapshot id>} for A against the
archive, {"live": true} for the archive against live), so its page, once the snapshot is taken,
opens that comparison (jobs.views reads it; `comparison_query`).
"""

from datetime import datetime

from jobs.models import Job
from pvs.models import PV
from snapshots.capture.actions import request_snapshot
from snapshots.capture.models import Snapshot, SnapshotMode
from snapshots.capture.services import archive_time_refusal

SNAPSHOT, LIVE = "snapshot", "live"
AGAINST = [(SNAPSHOT, "the snapshot against the archive"), (LIVE, "live values against the archive")]


class ArchiveComparisonError(ValueError):
    """Why this comparison with the archive cannot be started (shown on the form / a 400)."""


def archive_comparison_refusal(snapshot: Snapshot, at: datetime) -> str | None:
    """Why the archive at `at` cannot be compared with `snapshot`, or None."""
    refusal = archive_time_refusal(at)
    if refusal:
        return refusal
    if not PV.objects.filter(snapshot_values__snapshot=snapshot).exists():
        return "None of this snapshot's PVs is in the registry now: there is nothing to ask the archive for."
    return None


def request_archive_comparison(snapshot: Snapshot, at: datetime, against: str, *, user, via: str) -> Job:
    """Start the snapshot job from the archive at `at` for `snapshot`'s registry PVs, whose page
    then opens the comparison (`against`: SNAPSHOT or LIVE). Raises ArchiveComparisonError."""
    refusal = archive_comparison_refusal(snapshot, at)
    if refusal:
        raise ArchiveComparisonError(refusal)
    addresses = list(
        PV.objects.filter(snapshot_values__snapshot=snapshot).order_by("id").values_list("setpoint_address", flat=True)
    )
    when = at.isoformat(timespec="seconds")
    params = {
        "title": f"Archive at {when} (compared with #{snapshot.pk})",
        "comment": f"Taken from the archive to compare with snapshot #{snapshot.pk} “{snapshot.title}”.",
        "mode": SnapshotMode.ARCHIVE.value,
        "at": at.isoformat(),
        "tags": [],
        "selection": {"pv": addresses},
        "compare": {"live": True} if against == LIVE else {"a": snapshot.pk},
    }
    return request_snapshot(user=user, via=via, params=params)
