"""The role groups and the permissions each one grants."""

import pytest
from django.contrib.auth.models import Group

from squirrel_site.roles import ROLES, sync_roles

pytestmark = pytest.mark.django_db


def test_migrate_creates_the_four_role_groups():
    assert set(Group.objects.filter(name__in=ROLES).values_list("name", flat=True)) == set(ROLES)


def test_a_viewer_reads_and_changes_nothing(viewer):
    assert viewer.has_perm("pvs.view_pv") and viewer.has_perm("snapshots.view_snapshot")
    assert not viewer.has_perm("pvs.change_pv")
    assert not viewer.has_perm("snapshots.add_snapshot")
    assert not viewer.has_perm("snapshots.add_restore")


def test_an_editor_curates_but_neither_snapshots_nor_restores(editor):
    assert editor.has_perm("pvs.add_pv") and editor.has_perm("tags.delete_tag")
    assert editor.has_perm("tags.change_taggroup") and editor.has_perm("pvs.view_pv")
    assert not editor.has_perm("snapshots.add_snapshot")
    assert not editor.has_perm("snapshots.add_restore")


def test_an_operator_snapshots_and_restores_but_does_not_curate(operator_user):
    assert operator_user.has_perm("snapshots.add_snapshot") and operator_user.has_perm("snapshots.add_restore")
    assert not operator_user.has_perm("pvs.change_pv")
    assert not operator_user.has_perm("snapshots.manage_protected_tags")


def test_only_the_admin_role_manages_golden_tags_and_accounts(admin_role_user, operator_user):
    assert admin_role_user.has_perm("snapshots.manage_protected_tags")
    assert admin_role_user.has_perm("auth.change_user")
    assert admin_role_user.has_perm("knox.delete_authtoken")
    assert not operator_user.has_perm("squirrel_site.view_auditentry")


def test_sync_restores_a_role_that_was_edited():
    viewer_group = Group.objects.get(name="viewer")
    viewer_group.permissions.clear()
    sync_roles()
    assert viewer_group.permissions.filter(codename="view_pv").exists()


def test_users_without_a_role_hold_no_permissions(make_user):
    assert not make_user(None).get_all_permissions()
