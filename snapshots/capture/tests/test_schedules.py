import json
from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from jobs.models import JobStatus
from pvs.models import PVSet
from pvs.pv_sets import PVSetError, delete_pv_set, save_pv_set
from snapshots.capture.schedules import apply_retention, delete_schedule, run_schedule, save_schedule
from snapshots.capture.schedules import schedule_selection as run_schedule_selection
from snapshots.models import (
    GOLDEN_TAG,
    Restore,
    RestorePreview,
    Snapshot,
    SnapshotMode,
    SnapshotOrigin,
    SnapshotSchedule,
    SnapshotTag,
)
from squirrel_site.audit import AuditAction, AuditVia
from squirrel_site.models import AuditEntry
from squirrel_site.testing.snapshots import ALL_CACHED

pytestmark = pytest.mark.django_db
# Who changes the schedules of these tests (the audit entry's actor and via).
CHANGED_BY = {"actor": None, "via": AuditVia.COMMAND}


@pytest.fixture
def hourly(db):
    return CrontabSchedule.objects.create(minute="0", hour="*")


@pytest.fixture
def schedule(hourly, admin_user):
    hourly_snapshots = SnapshotSchedule(
        name="Hourly", crontab=hourly, mode=SnapshotMode.CACHE, keep_last=2, owner=admin_user
    )
    return save_schedule(hourly_snapshots, **CHANGED_BY)


def test_saving_a_schedule_creates_its_beat_task(schedule, hourly):
    task = PeriodicTask.objects.get()
    assert (task.task, task.crontab, json.loads(task.kwargs), task.enabled) == (
        "snapshots.scheduled_snapshot",
        hourly,
        {"schedule_id": schedule.pk},
        True,
    )


def test_disabling_a_schedule_disables_its_task(schedule):
    schedule.enabled = False
    save_schedule(schedule, **CHANGED_BY)
    assert PeriodicTask.objects.get().enabled is False


def test_deleting_a_schedule_deletes_its_task(schedule):
    delete_schedule(schedule, **CHANGED_BY)
    assert not PeriodicTask.objects.exists()


def test_a_run_takes_a_scheduled_snapshot_as_a_job(schedule, three_pvs, cache):
    cache(ALL_CACHED)
    job = run_schedule(schedule.pk)
    assert job.status == JobStatus.SUCCEEDED, job.error
    snapshot = Snapshot.objects.get(pk=job.result_id)
    assert (snapshot.origin, snapshot.schedule, snapshot.created_by, snapshot.pv_count) == (
        SnapshotOrigin.SCHEDULED,
        schedule,
        schedule.owner,
        3,
    )
    assert snapshot.title.startswith("Hourly ")


def test_a_disabled_schedule_does_not_run(schedule):
    schedule.enabled = False
    save_schedule(schedule, **CHANGED_BY)
    assert run_schedule(schedule.pk) is None


def _scheduled(schedule, user, hours_ago):
    snapshot = Snapshot.objects.create(title=f"-{hours_ago}h", created_by=user, mode="cache", schedule=schedule)
    Snapshot.objects.filter(pk=snapshot.pk).update(created_at=timezone.now() - timedelta(hours=hours_ago))
    return snapshot


def test_retention_keeps_the_newest_and_every_golden_or_restored_snapshot(schedule, admin_user):
    newest, second, third, golden, restored = (_scheduled(schedule, admin_user, h) for h in (1, 2, 3, 4, 5))
    golden.tags.add(SnapshotTag.objects.get(name=GOLDEN_TAG))
    preview = RestorePreview.objects.create(
        snapshot=restored, created_by=admin_user, expires_at=timezone.now(), live_source="cache"
    )
    Restore.objects.create(preview=preview, snapshot=restored, created_by=admin_user)
    oldest = _scheduled(schedule, admin_user, 6)

    assert apply_retention(schedule) == 2
    assert set(Snapshot.objects.values_list("pk", flat=True)) == {newest.pk, second.pk, golden.pk, restored.pk}
    assert not Snapshot.objects.filter(pk__in=[third.pk, oldest.pk]).exists()


def test_admin_chooses_a_pv_set_from_a_list_and_the_scheduled_snapshot_takes_its_pvs(
    client, admin_user, hourly, make_pvs, live_values
):
    [first, _, third] = make_pvs("SCH:A", "SCH:B", "SCH:C")
    live_values({"SCH:A": 1.0, "SCH:B": 2.0, "SCH:C": 3.0})
    pv_set = save_pv_set(PVSet(name="A and C"), member_ids=[first.pk, third.pk], **CHANGED_BY)
    client.force_login(admin_user)
    form = client.get("/admin/snapshots/snapshotschedule/add/").text
    assert f'<option value="{pv_set.pk}">A and C</option>' in form and 'name="selection"' not in form
    response = client.post(
        "/admin/snapshots/snapshotschedule/add/",
        {**SCHEDULE_FORM, "crontab": hourly.pk, "mode": "cache", "pv_set": pv_set.pk, "owner": admin_user.pk},
    )
    assert response.status_code == 302
    schedule = SnapshotSchedule.objects.get()
    assert schedule.pv_set == pv_set
    assert AuditEntry.objects.filter(action=AuditAction.SCHEDULE_CHANGED).get().details["pv_set"] == "A and C"

    job = run_schedule(schedule.pk)
    assert job.status == JobStatus.SUCCEEDED, job.error
    snapshot = Snapshot.objects.get(schedule=schedule)
    assert sorted(snapshot.values.values_list("pv_name", flat=True)) == ["SCH:A", "SCH:C"]


def test_a_pv_set_a_schedule_uses_cannot_be_deleted(schedule):
    pv_set = save_pv_set(PVSet(name="Used", filters={"device": "X"}), **CHANGED_BY)
    schedule.pv_set = pv_set
    save_schedule(schedule, changed=["pv_set"], **CHANGED_BY)
    with pytest.raises(PVSetError, match="used by “Hourly”"):
        delete_pv_set(pv_set, **CHANGED_BY)
    assert PVSet.objects.filter(pk=pv_set.pk).exists()


def test_a_schedule_with_filters_from_before_pv_sets_shows_them_read_only_and_a_set_replaces_them(
    client, admin_user, schedule
):
    schedule.selection = {"device": "MAG"}
    save_schedule(schedule, **CHANGED_BY)
    assert run_schedule_selection(schedule) == {"device": "MAG"}
    client.force_login(admin_user)
    url = f"/admin/snapshots/snapshotschedule/{schedule.pk}/change/"
    page = client.get(url).text
    assert "MAG" in page and 'name="selection"' not in page
    pv_set = save_pv_set(PVSet(name="Magnets", filters={"device": "MAG"}), **CHANGED_BY)
    fields = {**SCHEDULE_FORM, "name": schedule.name, "crontab": schedule.crontab_id, "owner": admin_user.pk}
    assert client.post(url, {**fields, "pv_set": pv_set.pk}).status_code == 302
    schedule.refresh_from_db()
    assert (schedule.pv_set, schedule.selection) == (pv_set, {})
    assert run_schedule_selection(schedule) == {"pv_set": pv_set.pk}


def test_admin_saves_a_schedule_with_its_task(client, admin_user, hourly):
    client.force_login(admin_user)
    response = client.post(
        "/admin/snapshots/snapshotschedule/add/",
        {
            "name": "Nightly",
            "enabled": "on",
            "crontab": hourly.pk,
            "mode": "hybrid",
            "keep_last": "7",
            "owner": admin_user.pk,
        },
    )
    assert response.status_code == 302
    assert json.loads(PeriodicTask.objects.get().kwargs) == {"schedule_id": SnapshotSchedule.objects.get().pk}


def test_a_redelivered_beat_message_takes_one_snapshot(schedule, three_pvs, cache):
    cache(ALL_CACHED)
    first = run_schedule(schedule.pk, key="scheduled-snapshot:task-1")
    again = run_schedule(schedule.pk, key="scheduled-snapshot:task-1")  # the same message, delivered again
    assert again.pk == first.pk and again.result_id == first.result_id
    assert Snapshot.objects.filter(schedule=schedule).count() == 1
    run_schedule(schedule.pk, key="scheduled-snapshot:task-2")  # the next beat
    assert Snapshot.objects.filter(schedule=schedule).count() == 2


def test_schedule_changes_in_the_admin_are_audited(client, admin_user, hourly):
    client.force_login(admin_user)
    fields = {
        "name": "Nightly",
        "enabled": "on",
        "crontab": hourly.pk,
        "mode": "hybrid",
        "keep_last": "7",
        "owner": admin_user.pk,
    }
    client.post("/admin/snapshots/snapshotschedule/add/", fields)
    schedule = SnapshotSchedule.objects.get()
    client.post(f"/admin/snapshots/snapshotschedule/{schedule.pk}/change/", {**fields, "keep_last": "3"})
    client.post(f"/admin/snapshots/snapshotschedule/{schedule.pk}/delete/", {"post": "yes"})
    created, changed, deleted = AuditEntry.objects.filter(action=AuditAction.SCHEDULE_CHANGED).order_by("id")
    assert (created.summary, deleted.summary) == ("Schedule “Nightly” created", "Schedule “Nightly” deleted")
    assert "keep_last" in changed.details["changed"] and changed.details["keep_last"] == 3
    by = {(entry.actor, entry.via, entry.target_id) for entry in (created, changed, deleted)}
    assert by == {(admin_user, AuditVia.ADMIN, str(schedule.pk))}


def test_a_scheduled_snapshot_is_audited_once_as_requested_by_the_system(schedule, three_pvs, cache):
    cache(ALL_CACHED)
    job = run_schedule(schedule.pk, key="scheduled-snapshot:task-1")
    run_schedule(schedule.pk, key="scheduled-snapshot:task-1")  # redelivered
    entry = AuditEntry.objects.get(action=AuditAction.SNAPSHOT_REQUESTED)
    assert (entry.actor, entry.via, entry.target_type, entry.target_id) == (None, AuditVia.JOB, "jobs.job", str(job.pk))
    assert entry.details["schedule"] == schedule.pk and entry.details["owner"] == "admin"


def test_retention_deletions_are_audited(schedule, admin_user):
    kept, pruned = _scheduled(schedule, admin_user, 1), _scheduled(schedule, admin_user, 2)
    _scheduled(schedule, admin_user, 0)
    apply_retention(schedule)
    entry = AuditEntry.objects.get(action=AuditAction.SNAPSHOT_DELETED)
    assert (entry.target_id, entry.via, entry.details["schedule"]) == (str(pruned.pk), AuditVia.JOB, schedule.pk)
    assert Snapshot.objects.filter(pk=kept.pk).exists()


SCHEDULE_FORM = {"name": "Nightly", "enabled": "on", "mode": "hybrid", "keep_last": "7"}


@pytest.fixture
def staff(make_user):
    """make_user, as a member of staff (the admin site is where schedules are edited)."""

    def make(role: str):
        user = make_user(role)
        user.is_staff = True
        user.save(update_fields=["is_staff"])
        return user

    return make


def test_an_operator_owns_the_schedule_they_create_whatever_owner_they_post(client, staff, admin_user, hourly):
    operator = staff("operator")
    client.force_login(operator)

    response = client.post(
        "/admin/snapshots/snapshotschedule/add/", {**SCHEDULE_FORM, "crontab": hourly.pk, "owner": admin_user.pk}
    )

    assert response.status_code == 302
    assert SnapshotSchedule.objects.get().owner == operator


def test_an_operator_cannot_change_a_schedules_owner(client, staff, admin_user, schedule):
    operator = staff("operator")
    client.force_login(operator)
    fields = {**SCHEDULE_FORM, "name": schedule.name, "crontab": schedule.crontab_id, "owner": operator.pk}

    response = client.post(f"/admin/snapshots/snapshotschedule/{schedule.pk}/change/", fields)

    assert response.status_code == 302
    schedule.refresh_from_db()
    assert (schedule.owner, schedule.keep_last) == (admin_user, 7)


def test_the_admin_role_may_name_another_owner(client, staff, hourly):
    admin, operator = staff("admin"), staff("operator")
    client.force_login(admin)

    client.post("/admin/snapshots/snapshotschedule/add/", {**SCHEDULE_FORM, "crontab": hourly.pk, "owner": operator.pk})

    assert SnapshotSchedule.objects.get().owner == operator
