"""The audited verbs of snapshots.capture.actions, reached the way people reach them: the API
(session or token), the pages and the admin. Each entry names the actor and where the request came from."""

import io

import pytest
from django.urls import reverse

from jobs.models import Job
from pvs.models import PV
from snapshots.capture.actions import delete_snapshots
from snapshots.models import GOLDEN_TAG, Snapshot, SnapshotTag
from squirrel_site.audit import AuditAction, AuditVia
from squirrel_site.models import AuditEntry
from squirrel_site.tokens import create_token

pytestmark = pytest.mark.django_db


def only_entry(action: str) -> AuditEntry:
    return AuditEntry.objects.get(action=action)


@pytest.fixture
def archived(make_snapshot):
    return make_snapshot("Before MD", {"T:A": 1.5, "T:B": 2.0})


def test_a_snapshot_requested_with_a_token_names_the_tokens_owner(client, operator):
    _, token = create_token(operator, actor=None, via=AuditVia.COMMAND)
    response = client.post(
        "/api/v1/snapshots/",
        {"title": "Before MD", "mode": "cache"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {token}",
    )
    entry = only_entry(AuditAction.SNAPSHOT_REQUESTED)
    assert (entry.actor, entry.via, entry.target_type, entry.target_id) == (
        operator,
        AuditVia.API,
        "jobs.job",
        str(response.json()["id"]),
    )
    assert entry.details["title"] == "Before MD" and "Before MD" in entry.summary


def test_a_snapshot_requested_on_the_page_is_audited_as_from_the_page(client, operator):
    PV.objects.create(setpoint_address="T:A")
    client.force_login(operator)
    client.post(reverse("snapshots:list"), {"take-title": "Shift start", "take-mode": "cache"})
    entry = only_entry(AuditAction.SNAPSHOT_REQUESTED)
    assert (entry.actor, entry.via, entry.target_id) == (operator, AuditVia.PAGE, str(Job.objects.get().pk))


def test_an_import_is_audited_with_the_new_snapshot(client, operator, archived):
    client.force_login(operator)
    upload = io.BytesIO(client.get(f"/api/v1/snapshots/{archived.id}/export/").content)
    upload.name = "before-md.json"
    imported = client.post("/api/v1/snapshots/import/", {"file": upload}).json()
    entry = only_entry(AuditAction.SNAPSHOT_IMPORTED)
    assert (entry.actor, entry.via, entry.target_id) == (operator, AuditVia.API, str(imported["id"]))
    assert entry.details == {"file": "before-md.json", "pv_count": 2}


def test_a_malformed_import_records_nothing(client, operator):
    client.force_login(operator)
    upload = io.BytesIO(b"{not json")
    upload.name = "broken.json"
    assert client.post("/api/v1/snapshots/import/", {"file": upload}).status_code == 400
    assert not AuditEntry.objects.exists()


def test_a_retag_records_the_tags_added_and_removed(client, operator, archived):
    study, shutdown = SnapshotTag.objects.create(name="machine-study"), SnapshotTag.objects.create(name="shutdown")
    archived.tags.add(shutdown)
    client.force_login(operator)
    client.put(f"/api/v1/snapshots/{archived.id}/tags/", {"tags": [study.name]}, content_type="application/json")
    entry = only_entry(AuditAction.SNAPSHOT_CHANGED)
    assert (entry.actor, entry.via, entry.target_id) == (operator, AuditVia.API, str(archived.pk))
    assert entry.details == {"tags": {"added": ["machine-study"], "removed": ["shutdown"]}}
    assert "tagged machine-study, untagged shutdown" in entry.summary


def test_a_refused_golden_retag_records_nothing(client, operator, archived):
    client.force_login(operator)
    url = f"/api/v1/snapshots/{archived.id}/tags/"
    response = client.put(url, {"tags": [GOLDEN_TAG]}, content_type="application/json")
    assert response.status_code == 400 and "Only administrators" in response.json()["error"]["fields"]["tags"][0]
    assert not AuditEntry.objects.exists() and not archived.tags.exists()


def test_a_retag_that_changes_nothing_records_nothing(client, operator, archived):
    client.force_login(operator)
    client.put(f"/api/v1/snapshots/{archived.id}/tags/", {"tags": []}, content_type="application/json")
    assert not AuditEntry.objects.exists()


@pytest.fixture
def admin_staff(admin_role_user):
    admin_role_user.is_staff = True
    admin_role_user.save()
    return admin_role_user


def test_an_edit_in_the_admin_is_audited(client, admin_staff, archived):
    client.force_login(admin_staff)
    golden = SnapshotTag.objects.get(name=GOLDEN_TAG)
    client.post(
        reverse("admin:snapshots_snapshot_change", args=[archived.id]),
        {"title": "Reference", "comment": "", "tags": [golden.id]},
    )
    entry = only_entry(AuditAction.SNAPSHOT_CHANGED)
    assert (entry.actor, entry.via) == (admin_staff, AuditVia.ADMIN)
    assert entry.details == {"title": ["Before MD", "Reference"], "tags": {"added": [GOLDEN_TAG], "removed": []}}
    assert Snapshot.objects.golden().get().title == "Reference"


def test_deletions_in_the_admin_are_audited_one_entry_per_snapshot(client, admin_staff, make_snapshot):
    first, second = make_snapshot("One", {"T:A": 1.0}), make_snapshot("Two", {"T:A": 2.0})
    client.force_login(admin_staff)
    client.post(
        reverse("admin:snapshots_snapshot_changelist"),
        {"action": "delete_selected", "_selected_action": [first.id, second.id], "post": "yes"},
    )
    entries = AuditEntry.objects.filter(action=AuditAction.SNAPSHOT_DELETED)
    assert sorted(entries.values_list("target_id", flat=True)) == sorted([str(first.pk), str(second.pk)])
    assert not Snapshot.objects.exists()


def test_deleting_keeps_golden_snapshots_for_those_who_may_not_manage_them(operator, make_snapshot):
    golden, plain = make_snapshot("Golden", {"T:A": 1.0}), make_snapshot("Plain", {"T:A": 2.0})
    golden.tags.add(SnapshotTag.objects.get(name=GOLDEN_TAG))
    assert delete_snapshots(Snapshot.objects.all(), user=operator, via=AuditVia.API) == 1
    assert list(Snapshot.objects.all()) == [golden]
    assert only_entry(AuditAction.SNAPSHOT_DELETED).target_id == str(plain.pk)


def _nothing_recorded() -> bool:
    return (
        not Job.objects.exists()
        and not AuditEntry.objects.filter(
            action__in=[AuditAction.SNAPSHOT_REQUESTED, AuditAction.RESTORE_REQUESTED]
        ).exists()
    )


def test_a_snapshot_requested_while_the_broker_is_down_answers_503_and_records_nothing(client, operator, broker_down):
    client.force_login(operator)
    response = client.post(
        "/api/v1/snapshots/", {"title": "Before MD", "mode": "cache"}, content_type="application/json"
    )
    assert response.status_code == 503 and response["Retry-After"]
    assert response.json()["error"]["code"] == "service_unavailable"
    assert "nothing was recorded" in response.json()["error"]["message"]
    assert _nothing_recorded()


def test_a_snapshot_requested_on_the_page_while_the_broker_is_down_shows_the_503_page(client, operator, broker_down):
    PV.objects.create(setpoint_address="T:A")
    client.force_login(operator)
    response = client.post(reverse("snapshots:list"), {"take-title": "Shift start", "take-mode": "cache"})
    assert response.status_code == 503 and response["Retry-After"]
    assert "The job queue (Redis) is unreachable; nothing was recorded." in response.text
    assert _nothing_recorded()
