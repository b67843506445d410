"""Restore: idempotent and resumable. A run that dies (around its puts, or before its items were
recorded) is resumed without writing any PV twice or skipping one; one runner at a time."""

import threading
from datetime import timedelta

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from jobs.models import Job, JobStatus, JobType
from jobs.runner import run_job
from pvs.models import PV
from snapshots.models import Restore, RestoreItemStatus, RestoreStatus
from snapshots.restore import claim, execute, plan, stages
from snapshots.restore.errors import RestoreBusy
from snapshots.restore.execute import execute_restore, resume_restore
from snapshots.restore.preview import preview_restore
from snapshots.restore.runners import RestoreRunner
from squirrel_site.testing.restore import (
    CrashingPut,
    make_pv,
    make_snapshot,
    simple_setup,
    statuses,
)


@pytest.mark.django_db
def test_resume_after_a_crash_mid_stage_writes_each_pv_exactly_once(ioc, user, undo_snapshots):
    saved = {}
    for i in range(6):
        pv = make_pv(f"C:{i}", stage=0 if i < 4 else 1)
        ioc.add(pv.setpoint_address, 0.0)
        saved[pv] = float(i + 10)
    preview = preview_restore(make_snapshot(user, saved), created_by=user, io=ioc)
    ioc.crash_after = 2  # two of stage 0's four puts reach the IOC, then the worker dies

    with pytest.raises(CrashingPut):
        execute_restore(preview, user=user, io=ioc)
    restore = preview.restore
    restore.refresh_from_db()
    assert restore.writing_stage == 0
    assert set(restore.items.values_list("status", flat=True)) == {RestoreItemStatus.PENDING}

    ioc.crash_after = None
    resumed = execute_restore(preview, user=user, io=ioc)  # the redelivered task

    assert resumed.pk == restore.pk and resumed.runs == 2
    assert ioc.puts == {f"C:{i}": 1 for i in range(6)}
    assert ioc.values == {f"C:{i}": float(i + 10) for i in range(6)}
    assert set(statuses(resumed).values()) == {RestoreItemStatus.VERIFIED}
    assert len(undo_snapshots) == 1
    found = resumed.items.filter(message__startswith="Found applied").count()
    assert found == 2


@pytest.mark.django_db(transaction=True)
def test_items_are_recorded_beside_the_puts_on_a_second_connection(ioc, user, undo_snapshots, monkeypatch):
    # Outside a caller's transaction (as in a worker) the items and results are written by the
    # recorder's own connection while the puts go out.
    backends = set()
    real = stages._record_stage

    def record(*args):
        backends.add(_backend_pid())
        real(*args)

    monkeypatch.setattr(stages, "_record_stage", record)
    for i in range(6):
        make_pv(f"C:{i}", readback=f"C:RB{i}", stage=i % 3)
        ioc.add(f"C:{i}", 0.0, readback=f"C:RB{i}")
    saved = {pv: float(pv.pk) for pv in PV.objects.all()}
    restore = execute_restore(preview_restore(make_snapshot(user, saved), created_by=user, io=ioc), user=user, io=ioc)

    assert backends and _backend_pid() not in backends
    assert restore.status == RestoreStatus.SUCCEEDED and restore.writing_stage is None
    assert set(statuses(restore).values()) == {RestoreItemStatus.VERIFIED}
    assert [stage for (stage,) in restore.items.order_by("pv_name").values_list("stage")] == [0, 1, 2, 0, 1, 2]
    assert ioc.puts == {f"C:{i}": 1 for i in range(6)}


@pytest.mark.django_db(transaction=True)
def test_verification_of_a_new_run_reads_back_before_the_items_are_recorded(ioc, user, undo_snapshots, monkeypatch):
    # A new run verifies what its puts wrote without reading the items back: its rounds start
    # while the recorder still creates the items, and their results are recorded after them.
    for i in range(4):
        make_pv(f"V:{i}", readback=f"V:RB{i}", stage=i % 2)
        ioc.add(f"V:{i}", 0.0, readback=f"V:RB{i}")
    saved = {pv: float(pv.pk) for pv in PV.objects.all()}
    preview = preview_restore(make_snapshot(user, saved), created_by=user, io=ioc)
    read_back, read, create = threading.Event(), ioc.read, plan._create_items
    order = []

    def read_and_tell(addresses, *args, **kwargs):
        if all("RB" in address for address in addresses):  # the undo snapshot reads setpoints too
            order.append("read-back")
            read_back.set()
        return read(addresses, *args, **kwargs)

    def create_after_the_read_back(*args):
        read_back.wait(5)
        order.append("items")
        return create(*args)

    monkeypatch.setattr(ioc, "read", read_and_tell)
    monkeypatch.setattr(plan, "_create_items", create_after_the_read_back)
    restore = execute_restore(preview, user=user, io=ioc, verify_timeout=1.0)

    assert order[:2] == ["read-back", "items"]
    assert restore.status == RestoreStatus.SUCCEEDED
    assert set(statuses(restore).values()) == {RestoreItemStatus.VERIFIED}
    assert sorted(restore.items.values_list("readback_num", flat=True)) == sorted(saved.values())
    assert ioc.puts == {f"V:{i}": 1 for i in range(4)}


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_a_run_that_died_before_its_items_were_recorded_is_resumed_without_writing_twice(
    ioc, user, undo_snapshots, monkeypatch
):
    # The undo snapshot is committed and the first stage's puts go out while the recorder creates
    # the items. Here it fails (as if the worker died first): the resume creates them, reads back
    # the stages already marked as written and writes only what is not applied.
    saved = {}
    for i in range(6):
        pv = make_pv(f"C:{i}", stage=i // 2)
        ioc.add(pv.setpoint_address, 0.0)
        saved[pv] = float(i + 10)
    preview = preview_restore(make_snapshot(user, saved), created_by=user, io=ioc)

    first_put, put = threading.Event(), ioc.put

    def put_and_tell(*args, **kwargs):
        try:
            return put(*args, **kwargs)
        finally:
            first_put.set()

    def lost(*args):
        first_put.wait(5)
        raise psycopg.OperationalError("connection lost")

    monkeypatch.setattr(ioc, "put", put_and_tell)
    monkeypatch.setattr(plan, "_create_items", lost)
    with pytest.raises(psycopg.OperationalError):
        execute_restore(preview, user=user, io=ioc)
    restore = Restore.objects.get(preview=preview)
    assert restore.undo_snapshot_id is not None and not restore.items.exists()
    written_before = dict(ioc.puts)
    assert written_before and restore.writing_stage == max(int(a[2:]) // 2 for a in written_before)

    monkeypatch.undo()
    resumed = execute_restore(preview, user=user, io=ioc)

    assert resumed.runs == 2 and resumed.status == RestoreStatus.SUCCEEDED
    assert ioc.puts == {f"C:{i}": 1 for i in range(6)}
    assert ioc.values == {f"C:{i}": float(i + 10) for i in range(6)}
    assert set(statuses(resumed).values()) == {RestoreItemStatus.VERIFIED}
    assert resumed.items.filter(message__startswith="Found applied").count() == len(written_before)
    assert len(undo_snapshots) == 1


@pytest.mark.django_db
def test_a_pv_edited_while_connecting_is_neither_written_nor_left_pending(ioc, user, undo_snapshots, monkeypatch):
    # The claim checked the registry; an edit during the connect window drops the PV from the
    # undo snapshot, so from the plan and the pending items alike.
    preview = preview_restore(simple_setup(ioc, user), created_by=user, io=ioc)
    connect = ioc.connect

    def connect_and_edit(addresses, timeout):
        PV.objects.filter(setpoint_address="T:SP0").update(setpoint_address="T:SP0_NEW")
        ioc.dead.add("T:SP0_NEW")  # no IOC serves the new name
        return connect(addresses, timeout)

    monkeypatch.setattr(ioc, "connect", connect_and_edit)
    restore = execute_restore(preview, user=user, io=ioc)

    assert ioc.puts == {"T:SP1": 1, "T:SP2": 1}
    assert statuses(restore) == {
        "T:SP0": RestoreItemStatus.DISCONNECTED,
        "T:SP1": RestoreItemStatus.VERIFIED,
        "T:SP2": RestoreItemStatus.VERIFIED,
    }
    assert restore.status == RestoreStatus.PARTIAL


@pytest.mark.django_db
def test_creating_the_items_again_adds_nothing(ioc, user, undo_snapshots):
    # A killed runner's INSERT can still commit while a resume runs its own.
    restore = execute_restore(preview_restore(simple_setup(ioc, user), created_by=user, io=ioc), user=user, io=ioc)
    before = statuses(restore)
    plan._create_items(restore.pk, restore.preview_id, restore.undo_snapshot_id, 2.0)
    assert statuses(restore) == before and restore.items.count() == 3


@pytest.mark.django_db
def test_resume_of_a_finished_restore_changes_nothing(ioc, user, undo_snapshots):
    restore = execute_restore(preview_restore(simple_setup(ioc, user), created_by=user, io=ioc), user=user, io=ioc)
    ioc.puts.clear()
    assert resume_restore(restore, io=ioc).status == RestoreStatus.SUCCEEDED
    assert not ioc.puts


@pytest.mark.django_db(transaction=True)
def test_a_second_runner_is_refused_while_the_first_holds_the_restore(ioc, user, undo_snapshots):
    preview = preview_restore(simple_setup(ioc, user), created_by=user, io=ioc)
    ioc.crash_after = 0
    with pytest.raises(CrashingPut):
        execute_restore(preview, user=user, io=ioc)
    restore = preview.restore
    db = settings.DATABASES["default"]
    with psycopg.connect(
        dbname=db["NAME"],
        user=db["USER"],
        password=db["PASSWORD"] or None,
        host=db["HOST"],
        port=db["PORT"],
        autocommit=True,
    ) as other:
        other.execute("SELECT pg_advisory_lock(%s::int, %s::int)", [claim._LOCK_NAMESPACE, restore.pk])
        with pytest.raises(RestoreBusy):
            resume_restore(restore, io=ioc)
        # Explicitly: a closed connection's locks go when its backend exits, a moment later.
        other.execute("SELECT pg_advisory_unlock(%s::int, %s::int)", [claim._LOCK_NAMESPACE, restore.pk])
    ioc.crash_after = None
    assert resume_restore(restore, io=ioc).status == RestoreStatus.SUCCEEDED


def _overdue_restore_job(user, preview) -> Job:
    """A restore job delivered again after its start deadline (its first run died)."""
    return Job.objects.create(
        type=JobType.RESTORE,
        created_by=user,
        status=JobStatus.RUNNING,
        data={"preview": preview.pk},
        start_by=timezone.now() - timedelta(seconds=1),
    )


@pytest.mark.django_db
def test_a_redelivered_restore_past_its_deadline_that_wrote_nothing_expires(ioc, user, monkeypatch):
    monkeypatch.setattr(execute, "_service", lambda: ioc)
    preview = preview_restore(simple_setup(ioc, user), created_by=user, io=ioc)
    job = _overdue_restore_job(user, preview)
    claim.claim(
        preview, user, job, {"verify": True, "verify_timeout": 1.0, "put_timeout": 1.0, "connect_timeout": 1.0}
    )  # the first run died after its claim

    run_job(job.pk, RestoreRunner.run)

    job.refresh_from_db()
    assert job.status == JobStatus.EXPIRED and "nothing was written" in job.message
    assert ioc.puts == {}
    restore = Restore.objects.get(preview=preview)
    assert (restore.status, restore.summary, restore.undo_snapshot_id) == (RestoreStatus.PARTIAL, {}, None)


@pytest.mark.django_db
def test_a_restore_past_its_deadline_whose_puts_had_begun_is_resumed(ioc, user, monkeypatch):
    monkeypatch.setattr(execute, "_service", lambda: ioc)
    snapshot = simple_setup(ioc, user, count=4)
    preview = preview_restore(snapshot, created_by=user, io=ioc)
    job = _overdue_restore_job(user, preview)
    job.start_by = timezone.now() + timedelta(seconds=60)
    ioc.crash_after = 2
    with pytest.raises(CrashingPut):
        execute_restore(preview, user=user, io=ioc, job=job)  # started in time, died mid-stage
    ioc.crash_after = None
    Job.objects.filter(pk=job.pk).update(start_by=timezone.now() - timedelta(seconds=1))

    run_job(job.pk, RestoreRunner.run)

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert ioc.puts == {f"T:SP{i}": 1 for i in range(4)}
