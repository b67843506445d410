"""Editing a snapshot's title, comment and tags on its page: permissions, golden, audit, bad input."""

import pytest
from django.urls import reverse

from snapshots.models import GOLDEN_TAG, Snapshot, SnapshotMode, SnapshotTag
from squirrel_site.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def snapshot(operator_user):
    snapshot = Snapshot.objects.create(
        title="Shift start", comment="before MD", created_by=operator_user, mode=SnapshotMode.CACHE
    )
    snapshot.tags.set([SnapshotTag.objects.create(name="weekly")])
    return snapshot


@pytest.fixture
def golden():
    return SnapshotTag.objects.get(name=GOLDEN_TAG)


def edit(client, snapshot, **post):
    return client.post(reverse("snapshots:edit", args=[snapshot.pk]), {f"edit-{k}": v for k, v in post.items()})


def test_the_snapshot_page_offers_the_edit_form_to_those_who_may_change_snapshots(
    client, viewer, operator_user, snapshot
):
    client.force_login(viewer)
    assert 'id="edit-snapshot"' not in client.get(reverse("snapshots:detail", args=[snapshot.pk])).text
    client.force_login(operator_user)
    page = client.get(reverse("snapshots:detail", args=[snapshot.pk])).text
    assert 'id="edit-snapshot"' in page and f'action="{reverse("snapshots:edit", args=[snapshot.pk])}"' in page
    assert 'value="Shift start"' in page and ">\nbefore MD</textarea>" in page
    assert f'value="{SnapshotTag.objects.get(name="weekly").pk}" id="id_edit-tags_0" checked' in page
    assert "golden" not in page  # an operator is not offered the golden tag


def test_an_operator_edits_title_comment_and_tags_and_each_change_is_audited(client, operator_user, snapshot):
    night = SnapshotTag.objects.create(name="night")
    client.force_login(operator_user)
    response = edit(client, snapshot, title="  Shift start, tuned ", comment="after MD", tags=[night.pk])
    assert response.status_code == 302 and response["Location"] == reverse("snapshots:detail", args=[snapshot.pk])
    snapshot.refresh_from_db()
    assert (snapshot.title, snapshot.comment) == ("Shift start, tuned", "after MD")
    assert [tag.name for tag in snapshot.tags.all()] == ["night"]
    entry = AuditEntry.objects.get(action="snapshot.changed")
    assert (entry.actor, entry.via, entry.target_id) == (operator_user, "page", str(snapshot.pk))
    assert entry.details["title"] == ["Shift start", "Shift start, tuned"]
    assert entry.details["tags"] == {"added": ["night"], "removed": ["weekly"]}
    assert "Snapshot “Shift start, tuned” saved." in client.get(response["Location"]).text


def test_a_viewer_may_not_edit(client, viewer, snapshot):
    client.force_login(viewer)
    assert edit(client, snapshot, title="Mine now").status_code == 403
    assert client.get(reverse("snapshots:edit", args=[snapshot.pk])).status_code == 403
    snapshot.refresh_from_db()
    assert snapshot.title == "Shift start" and not AuditEntry.objects.exists()


def test_an_operator_can_neither_set_nor_remove_golden(client, operator_user, snapshot, golden):
    client.force_login(operator_user)
    response = edit(client, snapshot, title="Shift start", tags=[golden.pk])
    assert response.status_code == 400 and "Select a valid choice" in response.text
    assert not snapshot.tags.filter(pk=golden.pk).exists()
    # A golden snapshot stays golden when an operator edits it; the page says why.
    snapshot.tags.add(golden)
    page = client.get(reverse("snapshots:edit", args=[snapshot.pk])).text
    assert "stays: only administrators set or remove it." in page
    assert edit(client, snapshot, title="Renamed", tags=[]).status_code == 302
    assert sorted(tag.name for tag in snapshot.tags.all()) == [GOLDEN_TAG]
    assert AuditEntry.objects.get().details["tags"] == {"added": [], "removed": ["weekly"]}


def test_the_admin_role_sets_and_removes_golden(client, admin_role_user, snapshot, golden):
    client.force_login(admin_role_user)
    assert f'value="{golden.pk}"' in client.get(reverse("snapshots:detail", args=[snapshot.pk])).text
    assert edit(client, snapshot, title="Shift start", tags=[golden.pk]).status_code == 302
    assert [tag.name for tag in snapshot.tags.all()] == [GOLDEN_TAG]
    assert "★ golden" in client.get(reverse("snapshots:detail", args=[snapshot.pk])).text
    assert edit(client, snapshot, title="Shift start", tags=[]).status_code == 302
    assert not snapshot.tags.exists()
    changes = [entry.details["tags"] for entry in AuditEntry.objects.order_by("id")]
    assert changes == [{"added": [GOLDEN_TAG], "removed": ["weekly"]}, {"added": [], "removed": [GOLDEN_TAG]}]


@pytest.mark.parametrize(
    "post, error",
    [
        ({"title": "   "}, "This field is required."),
        ({"title": ""}, "This field is required."),
        ({"title": "x" * 201}, "Ensure this value has at most 200 characters"),
        ({"title": "ok", "tags": ["nope"]}, "is not a valid value"),
        ({"title": "ok", "tags": ["999999"]}, "Select a valid choice"),
    ],
)
def test_bad_input_is_a_form_error_and_changes_nothing(client, operator_user, snapshot, post, error):
    client.force_login(operator_user)
    response = edit(client, snapshot, **post)
    assert response.status_code == 400 and error in response.text
    snapshot.refresh_from_db()
    assert snapshot.title == "Shift start" and not AuditEntry.objects.exists()


def test_nothing_changed_records_nothing(client, operator_user, snapshot):
    client.force_login(operator_user)
    weekly = SnapshotTag.objects.get(name="weekly")
    assert edit(client, snapshot, title="Shift start", comment="before MD", tags=[weekly.pk]).status_code == 302
    assert not AuditEntry.objects.exists()


def test_editing_an_unknown_snapshot_is_404(client, operator_user):
    client.force_login(operator_user)
    assert client.post(reverse("snapshots:edit", args=[987654]), {"edit-title": "x"}).status_code == 404
