"""Executing a confirmed restore preview (snapshots.restore.preview makes it): claim it, take the
undo point, write stage by stage, verify, record the outcome.

Execution is idempotent and resumable, because Celery may run a task twice and a worker may die
half-way (docs/restore.md). PostgreSQL is the source of truth: the item of every PV moves
pending -> written -> verified / mismatch / timeout (or disconnected, no_write_access, failed),
and the restore records the last stage whose puts may have gone out (`writing_stage`, committed
before them). Items and put results are written beside the puts (snapshots.restore.recorder), so a
run that dies may leave pending items, or none at all, in stages up to `writing_stage`: a resume
creates missing items from the undo snapshot (snapshots.restore.plan) and reads the setpoint of
each pending item in those stages first (snapshots.restore.stages); equal to the target within
tolerance counts as written, anything else is written. Items in any later state are never written
again. One runner at a time holds a PostgreSQL advisory lock on the restore
(snapshots.restore.claim); a killed worker's connections close and release it. Verification is
snapshots.restore.verify.

All Channel Access goes through pvs.epics_io's EpicsService (`io`); tests pass a fake.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction
from django.db.models import Count, F
from django.utils import timezone

from jobs.models import Job
from pvs import channels
from snapshots.restore.claim import claim, registry_changed, runner_lock
from snapshots.restore.errors import RestoreError, RestoreExpired
from snapshots.restore.models import (
    Restore,
    RestoreItemStatus,
    RestorePreview,
    RestoreStatus,
)
from snapshots.restore.plan import new_plan, unfinished_plan
from snapshots.restore.recorder import Recorder
from snapshots.restore.stages import write_stage
from snapshots.restore.verify import Verifier

Progress = Callable[[int, str], None]

CONNECT_TIMEOUT = 2.0
PUT_TIMEOUT = 5.0
VERIFY_TIMEOUT = 5.0


def execute_restore(
    preview: RestorePreview,
    *,
    user,
    job=None,
    io=None,
    verify: bool = True,
    verify_timeout: float = VERIFY_TIMEOUT,
    put_timeout: float = PUT_TIMEOUT,
    connect_timeout: float = CONNECT_TIMEOUT,
    progress: Progress | None = None,
) -> Restore:
    """Execute a confirmed preview: undo snapshot, staged writes, verification, per-PV record.

    Refused with RestoreError if the preview expired, was executed already, or its PVs changed
    in the registry since. Called again for a preview whose restore did not finish (a redelivered
    task, a retry after a crash), it resumes that restore; the options of the first call stay.
    """
    restore, created = claim(
        preview,
        user,
        job,
        {
            "verify": verify,
            "verify_timeout": verify_timeout,
            "put_timeout": put_timeout,
            "connect_timeout": connect_timeout,
        },
    )
    # A restore created just now was checked against the registry by the claim (~0.2 s at 50,000
    # PVs); one found unfinished is checked again before it writes anything.
    return _run(restore, io=io, progress=progress, job=job, registry_checked=created)


def resume_restore(restore: Restore, *, io=None, progress: Progress | None = None, job=None) -> Restore:
    """Run `restore` from wherever its items stand; a finished restore is returned unchanged.

    Raises RestoreBusy if another runner holds it.
    """
    return _run(restore, io=io, progress=progress, job=job, registry_checked=False)


def _run(restore: Restore, *, io, progress: Progress | None, job, registry_checked: bool) -> Restore:
    io = io or _service()
    report = progress or (lambda percent, message: None)
    with runner_lock(restore), Recorder() as recorder:
        restore.refresh_from_db()
        if restore.is_finished:
            return restore
        # The job that holds the runner lock is the restore's job from now on.
        Restore.objects.filter(pk=restore.pk).update(
            status=RestoreStatus.RUNNING,
            started_at=restore.started_at or timezone.now(),
            runs=F("runs") + 1,
            job=job if job is not None else restore.job,
        )
        options = restore.options
        resumed = restore.undo_snapshot_id is not None
        item_ids = None  # a new run's: the recorder's future of its items' ids by PV name
        if resumed:
            plan = unfinished_plan(restore, options["connect_timeout"])
        else:
            # Nothing is written yet: a job past its start deadline (a delivery after a crash, long
            # after the request) does not start now, and a registry edit since the claim still
            # refuses, or the undo snapshot and the writes would follow different addresses.
            if job is not None and job.is_overdue():
                _end_unwritten(restore)
                raise RestoreExpired(f"Restore #{restore.pk} was not started before its deadline.")
            changed = None if registry_checked else registry_changed(restore.preview)
            if changed:
                _end_unwritten(restore)
                raise RestoreError(f"{changed} Nothing was written.")
            report(0, "Taking the undo snapshot")
            plan, item_ids = new_plan(restore, io, options["connect_timeout"], recorder)
        written = []
        for n, stage in enumerate(sorted(plan)):
            recorder.check()  # a failed write of the bookkeeping stops the restore before more puts
            report(10 + 70 * n // max(1, len(plan)), f"Writing stage {stage}")
            written += write_stage(restore, stage, plan[stage], io, options["put_timeout"], recorder, resumed)
        # Only after the last stage: a later stage (an enable, a mode) may move earlier read-backs.
        if options["verify"]:
            report(80, "Verifying read-backs")
            if item_ids is None:
                # Resumed: what earlier runs wrote is verified too, as the database records it.
                recorder.check(wait=True)
                verifier = Verifier(restore, io, recorder)
            else:
                # A new run wrote every item there is to verify: its rounds start while the
                # recorder is still recording, and record their results after it.
                recorder.check()
                verifier = Verifier(restore, io, recorder, written, item_ids)
            verifier.run(options["verify_timeout"])
        recorder.check(wait=True)
        _finish(restore, options["verify"], job)
        restore.refresh_from_db()
        report(100, f"Restore {restore.get_status_display().lower()}")
    return restore


def _end_unwritten(restore: Restore) -> None:
    """Finish a restore that wrote nothing (an empty summary says so)."""
    Restore.objects.filter(pk=restore.pk).update(status=RestoreStatus.PARTIAL, finished_at=timezone.now(), summary={})


def _finish(restore: Restore, verified: bool, job=None) -> None:
    """Record the outcome; the job's result goes in the same transaction, so a delivery of the job
    after a crash before job.finish() finishes it instead of failing on a finished restore."""
    summary = dict(restore.items.values_list("status").annotate(n=Count("id")).order_by())
    good = RestoreItemStatus.VERIFIED if verified else RestoreItemStatus.WRITTEN
    # PVs the preview skipped were confirmed as skipped: only the targeted PVs decide success.
    ok = all(status == good for status in summary)
    restore.status = RestoreStatus.SUCCEEDED if ok else RestoreStatus.PARTIAL
    restore.finished_at = timezone.now()
    restore.summary = summary
    with transaction.atomic():
        Restore.objects.filter(pk=restore.pk).update(
            status=restore.status, finished_at=restore.finished_at, summary=summary, writing_stage=None
        )
        if job is not None:
            Job.objects.filter(pk=job.pk).update(result_id=restore.pk)


def _service():
    """This process's EPICS service for both protocols (pvs.channels)."""
    return channels.service()
