"""The permission classes the API views use."""

import pytest
from django.contrib.auth.models import AnonymousUser
from rest_framework.test import APIRequestFactory

from squirrel_site.permissions import needs

pytestmark = pytest.mark.django_db
factory = APIRequestFactory()


def _allowed(permission_class, user, method: str) -> bool:
    request = getattr(factory, method)("/api/v1/anything/")
    request.user = user
    return permission_class().has_permission(request, view=None)


def test_needs_checks_the_read_permission_on_safe_methods(viewer, make_user):
    check = needs(read="pvs.view_pv", write="pvs.change_pv")
    assert _allowed(check, viewer, "get")
    assert not _allowed(check, make_user(None), "get")
    assert not _allowed(check, AnonymousUser(), "get")


def test_needs_checks_the_write_permission_on_other_methods(viewer, editor):
    check = needs(read="pvs.view_pv", write="pvs.change_pv")
    assert not _allowed(check, viewer, "post")
    assert _allowed(check, editor, "post")


def test_needs_without_a_write_permission_refuses_writes(admin_user):
    assert not _allowed(needs(read="pvs.view_pv"), admin_user, "delete")
