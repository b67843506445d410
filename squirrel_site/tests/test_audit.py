"""Recording audit entries."""

import pytest

from squirrel_site import audit
from squirrel_site.models import AuditEntry

pytestmark = pytest.mark.django_db


def test_an_entry_names_the_actor_and_the_target(admin_user):
    entry = audit.record(
        admin_user,
        audit.AuditAction.TOKEN_CREATED,
        "Token for admin",
        via=audit.AuditVia.COMMAND,
        target=admin_user,
        details={"expires": None},
    )
    entry.refresh_from_db()
    assert (entry.actor, entry.actor_name, entry.target_type, entry.target_id) == (
        admin_user,
        "admin",
        "auth.user",
        str(admin_user.pk),
    )
    assert list(AuditEntry.objects.for_target(admin_user)) == [entry]


def test_the_actor_name_survives_the_account(admin_user):
    entry = audit.record(admin_user, audit.AuditAction.PVS_DELETED, "Deleted 3 PVs", via=audit.AuditVia.API)
    admin_user.delete()
    entry.refresh_from_db()
    assert entry.actor is None and entry.actor_name == "admin"


def test_system_actions_have_no_actor():
    entry = audit.record(None, audit.AuditAction.SNAPSHOT_REQUESTED, "Scheduled snapshot", via=audit.AuditVia.JOB)
    assert entry.actor is None and entry.actor_name == ""
