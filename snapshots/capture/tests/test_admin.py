import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from snapshots.models import GOLDEN_TAG, Snapshot, SnapshotMode, SnapshotTag


@pytest.fixture
def snapshot(admin_user):
    return Snapshot.objects.create(title="Before shutdown", created_by=admin_user, mode=SnapshotMode.CACHE)


def _staff(user):
    user.is_staff = True
    user.save()
    return user


@pytest.fixture
def operator(make_user):
    """An operator with staff status: may edit snapshots in the admin, not their protected tags."""
    return _staff(make_user("operator", "operator"))


def _post(client, snapshot, tags):
    return client.post(
        reverse("admin:snapshots_snapshot_change", args=[snapshot.id]),
        {"title": snapshot.title, "comment": "", "tags": [t.id for t in tags]},
    )


def test_golden_tag_exists_and_is_protected(db):
    assert SnapshotTag.objects.get(name=GOLDEN_TAG).protected


def test_an_operator_cannot_set_the_golden_tag(client, operator, snapshot):
    client.force_login(operator)
    response = _post(client, snapshot, [SnapshotTag.objects.get(name=GOLDEN_TAG)])
    assert b"Only administrators may add or remove protected tags" in response.content
    assert not snapshot.tags.exists()


def test_an_operator_may_set_unprotected_tags(client, operator, snapshot):
    client.force_login(operator)
    machine_study = SnapshotTag.objects.create(name="machine-study")
    assert _post(client, snapshot, [machine_study]).status_code == 302
    assert list(snapshot.tags.all()) == [machine_study]


def test_the_admin_role_sets_the_golden_tag(client, admin_role_user, snapshot):
    client.force_login(_staff(admin_role_user))
    assert _post(client, snapshot, [SnapshotTag.objects.get(name=GOLDEN_TAG)]).status_code == 302
    assert Snapshot.objects.golden().get() == snapshot


@pytest.fixture
def curator(django_user_model):
    user = django_user_model.objects.create_user("curator", password="pw", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=[
                "change_snapshottag",
                "delete_snapshottag",
                "view_snapshottag",
                "delete_snapshot",
                "view_snapshot",
            ]
        )
    )
    return user


def test_only_admins_edit_or_delete_the_golden_tag(client, curator):
    golden = SnapshotTag.objects.get(name=GOLDEN_TAG)
    client.force_login(curator)
    client.post(reverse("admin:snapshots_snapshottag_change", args=[golden.id]), {"name": "gold", "protected": ""})
    client.post(reverse("admin:snapshots_snapshottag_delete", args=[golden.id]), {"post": "yes"})
    golden.refresh_from_db()
    assert (golden.name, golden.protected) == (GOLDEN_TAG, True)


def test_only_admins_delete_golden_snapshots(client, curator, snapshot):
    snapshot.tags.add(SnapshotTag.objects.get(name=GOLDEN_TAG))
    client.force_login(curator)
    client.post(reverse("admin:snapshots_snapshot_delete", args=[snapshot.id]), {"post": "yes"})
    client.post(
        reverse("admin:snapshots_snapshot_changelist"),
        {"action": "delete_selected", "_selected_action": [snapshot.id], "post": "yes"},
    )
    assert Snapshot.objects.filter(pk=snapshot.pk).exists()
