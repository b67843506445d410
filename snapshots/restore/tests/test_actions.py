"""The audited restore verbs of snapshots.restore.actions, reached the way people reach them: the
API and the pages. Each entry names the actor and where the request came from."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from jobs.models import Job, JobType
from snapshots.models import RestorePreview
from squirrel_site.audit import AuditAction, AuditVia
from squirrel_site.models import AuditEntry
from squirrel_site.testing.restore import make_preview

pytestmark = pytest.mark.django_db


def only_entry(action: str) -> AuditEntry:
    return AuditEntry.objects.get(action=action)


def _nothing_recorded() -> bool:
    return (
        not Job.objects.exists()
        and not AuditEntry.objects.filter(
            action__in=[AuditAction.SNAPSHOT_REQUESTED, AuditAction.RESTORE_REQUESTED]
        ).exists()
    )


def test_executing_a_preview_is_audited_as_a_restore_request(client, operator, saved):
    client.force_login(operator)
    preview = make_preview(client, saved)
    job = client.post(f"/api/v1/restore-previews/{preview.id}/execute/", content_type="application/json").json()
    entry = only_entry(AuditAction.RESTORE_REQUESTED)
    assert (entry.actor, entry.via, entry.target_type, entry.target_id) == (
        operator,
        AuditVia.API,
        "snapshots.restorepreview",
        str(preview.pk),
    )
    assert (entry.details["job"], entry.details["snapshot"], entry.details["write_count"]) == (job["id"], saved.pk, 2)


def test_confirming_on_the_page_is_audited_as_from_the_page(client, operator, saved):
    client.force_login(operator)
    preview = make_preview(client, saved)
    client.post(reverse("snapshots:restore_execute", args=[preview.pk]), {"verify": "on", "verify_timeout": "5"})
    assert (only_entry(AuditAction.RESTORE_REQUESTED).via, Job.objects.get().type) == (AuditVia.PAGE, JobType.RESTORE)


def test_a_refused_execution_records_nothing(client, operator, saved):
    client.force_login(operator)
    preview = make_preview(client, saved)
    RestorePreview.objects.filter(pk=preview.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.post(f"/api/v1/restore-previews/{preview.id}/execute/", content_type="application/json")
    assert response.status_code == 400 and list(response.json()["error"]["fields"]) == ["preview"]
    assert not AuditEntry.objects.filter(action=AuditAction.RESTORE_REQUESTED).exists()


def test_an_undo_from_the_cache_is_audited_with_its_preview(client, operator, restored):
    response = client.post(f"/api/v1/restores/{restored.id}/undo/")
    entry = only_entry(AuditAction.RESTORE_UNDO_REQUESTED)
    assert (entry.actor, entry.via, entry.target_type, entry.target_id) == (
        operator,
        AuditVia.API,
        "snapshots.restore",
        str(restored.pk),
    )
    assert response.status_code == 201 and entry.details == {"preview": response.json()["id"]}


def test_an_undo_made_by_a_worker_is_audited_with_its_job(client, operator, restored, redis_db):
    redis_db.flushdb()  # no monitor: the web process hands the preview to a worker
    response = client.post(reverse("snapshots:restore_undo", args=[restored.pk]))
    job = Job.objects.get(type=JobType.PREVIEW)
    assert response["Location"] == reverse("jobs:detail", args=[job.pk])
    entry = only_entry(AuditAction.RESTORE_UNDO_REQUESTED)
    assert (entry.via, entry.details) == (AuditVia.PAGE, {"job": job.pk})


def test_an_execution_while_the_broker_is_down_answers_503_and_records_nothing(client, operator, saved, broker_down):
    client.force_login(operator)
    preview = make_preview(client, saved)
    response = client.post(f"/api/v1/restore-previews/{preview.id}/execute/", content_type="application/json")
    assert response.status_code == 503 and response["Retry-After"]
    assert _nothing_recorded()


def test_a_confirmation_on_the_page_while_the_broker_is_down_shows_the_503_page(client, operator, saved, broker_down):
    client.force_login(operator)
    preview = make_preview(client, saved)
    response = client.post(
        reverse("snapshots:restore_execute", args=[preview.pk]), {"verify": "on", "verify_timeout": "5"}
    )
    assert response.status_code == 503
    assert "nothing was recorded" in response.text
    assert _nothing_recorded()
