"""The admin's API tokens and audit log."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from knox.models import AuthToken

from squirrel_site import audit
from squirrel_site.audit import AuditAction, AuditVia
from squirrel_site.models import AuditEntry
from squirrel_site.paginators import EstimatedCountPaginator
from squirrel_site.tokens import create_token

pytestmark = pytest.mark.django_db
TOKENS = reverse("admin:knox_authtoken_changelist")
AUDIT_LOG = reverse("admin:squirrel_site_auditentry_changelist")


@pytest.fixture
def staff(make_user):
    """Make a user of a role who may use the admin (staff status)."""

    def make(role):
        user = make_user(role, f"{role}-staff")
        user.is_staff = True
        user.save()
        return user

    return make


@pytest.fixture
def admin_client(client, staff):
    client.force_login(staff("admin"))
    return client


def test_an_admin_creates_a_token_and_sees_it_once(admin_client, viewer):
    response = admin_client.post(reverse("admin:knox_authtoken_add"), {"user": viewer.pk, "expires_in_days": "7"})
    secret = re.search(r'id="api-token"[^>]*>(sqt_\w+)<', response.text).group(1)
    token = AuthToken.objects.get()
    assert (token.user, token.token_key) == (viewer, secret[:15])
    assert token.expiry is not None
    listing = admin_client.get(TOKENS)
    assert token.token_key in listing.text and secret not in listing.text
    assert "digest" not in listing.context["cl"].list_display
    assert secret not in admin_client.get(reverse("admin:knox_authtoken_change", args=[token.pk])).text


def test_creating_a_token_in_the_admin_is_audited_with_the_admin_as_actor(admin_client, viewer):
    admin_client.post(reverse("admin:knox_authtoken_add"), {"user": viewer.pk})
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.via, entry.actor_name, entry.target_id) == (
        AuditAction.TOKEN_CREATED,
        AuditVia.ADMIN,
        "admin-staff",
        str(viewer.pk),
    )


def test_inactive_users_are_not_offered_a_token(admin_client, django_user_model):
    retired = django_user_model.objects.create_user("retired", is_active=False)
    response = admin_client.post(reverse("admin:knox_authtoken_add"), {"user": retired.pk})
    assert response.status_code == 200 and "user" in response.context["adminform"].form.errors
    assert not AuthToken.objects.exists()


def test_the_bulk_action_revokes_tokens_and_audits_each(admin_client, viewer, editor):
    tokens = [create_token(user, actor=None, via=AuditVia.COMMAND)[0] for user in (viewer, editor, viewer)]
    admin_client.post(
        TOKENS, {"action": "delete_selected", "_selected_action": [t.pk for t in tokens[:2]], "post": "yes"}
    )
    assert list(AuthToken.objects.values_list("pk", flat=True)) == [tokens[2].pk]
    revoked = AuditEntry.objects.filter(action=AuditAction.TOKEN_REVOKED, via=AuditVia.ADMIN)
    assert sorted(revoked.values_list("details__token_key", flat=True)) == sorted(t.token_key for t in tokens[:2])


def test_tokens_cannot_be_edited(admin_client, viewer, editor):
    token, _ = create_token(viewer, actor=None, via=AuditVia.COMMAND)
    url = reverse("admin:knox_authtoken_change", args=[token.pk])
    assert admin_client.get(url).status_code == 200
    admin_client.post(url, {"user": editor.pk})
    token.refresh_from_db()
    assert token.user == viewer


def test_the_audit_log_lists_entries_for_the_admin_role(admin_client, viewer):
    audit.record(viewer, AuditAction.SNAPSHOT_REQUESTED, "Snapshot “Before MD” requested", via=AuditVia.API)
    page = admin_client.get(AUDIT_LOG).text
    assert "Snapshot “Before MD” requested" in page and "snapshot.requested" in page


@pytest.mark.parametrize("role", ["viewer", "editor", "operator"])
def test_other_roles_do_not_see_the_audit_log(client, staff, role):
    client.force_login(staff(role))
    assert client.get(AUDIT_LOG).status_code == 403


def test_nobody_adds_changes_or_deletes_audit_entries(client, admin_user):
    entry = audit.record(admin_user, AuditAction.TOKEN_CREATED, "x", via=AuditVia.COMMAND)
    client.force_login(admin_user)
    assert client.get(reverse("admin:squirrel_site_auditentry_add")).status_code == 403
    assert (
        client.post(reverse("admin:squirrel_site_auditentry_delete", args=[entry.pk]), {"post": "yes"}).status_code
        == 403
    )
    client.post(reverse("admin:squirrel_site_auditentry_change", args=[entry.pk]), {"summary": "rewritten"})
    entry.refresh_from_db()
    assert entry.summary == "x"


def test_the_audit_log_filters_and_searches(admin_client, viewer, editor):
    audit.record(viewer, AuditAction.SNAPSHOT_REQUESTED, "first", via=AuditVia.API, target=editor)
    audit.record(editor, AuditAction.RESTORE_REQUESTED, "second", via=AuditVia.PAGE)

    def shown(**query) -> list[str]:
        return [entry.summary for entry in admin_client.get(AUDIT_LOG, query).context["cl"].result_list]

    assert shown(action=AuditAction.RESTORE_REQUESTED) == ["second"]
    assert shown(via=AuditVia.API) == ["first"]
    assert shown(q="editor") == ["second"]
    assert shown(q=str(editor.pk)) == ["first"]


def test_a_large_audit_log_is_listed_without_counting_it(admin_client, viewer, monkeypatch):
    audit.record(viewer, AuditAction.SNAPSHOT_REQUESTED, "x", via=AuditVia.API)
    monkeypatch.setattr(EstimatedCountPaginator, "_estimate", staticmethod(lambda queryset: 1_000_000))
    with CaptureQueriesContext(connection) as queries:
        assert admin_client.get(AUDIT_LOG).status_code == 200
    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper() and "auditentry" in q["sql"]]
    assert counts == []


def test_the_admin_index_names_audit_entries_and_leaves_out_celery_beats_tables(client, admin_user):
    client.force_login(admin_user)
    page = client.get(reverse("admin:index")).text
    assert ">Audit entries</a>" in page and "Audit log" not in page
    for hidden in ("Clocked", "Crontabs", "Intervals", "Periodic tasks", "Solar events"):
        assert f">{hidden}</a>" not in page, hidden
    # A schedule's form still adds a crontab in its pop-up (the crontab admin stays registered).
    assert client.get(reverse("admin:django_celery_beat_crontabschedule_add")).status_code == 200
    assert client.get("/admin/django_celery_beat/periodictask/").status_code == 404


def test_the_admin_shows_dates_with_the_day_24_hour_in_the_configured_time_zone(admin_client, viewer, settings):
    settings.TIME_ZONE = "America/Los_Angeles"
    audit.record(viewer, AuditAction.SNAPSHOT_REQUESTED, "afternoon", via=AuditVia.API)
    entry = AuditEntry.objects.get()
    AuditEntry.objects.filter(pk=entry.pk).update(created_at="2026-03-04T22:05:06Z")
    page = admin_client.get(AUDIT_LOG).text
    assert "2026-03-04 14:05:06" in page and "p.m." not in page  # 22:05 UTC is 14:05 in Los Angeles
    detail = admin_client.get(reverse("admin:squirrel_site_auditentry_change", args=[entry.pk])).text
    assert "2026-03-04 14:05:06 PST" in detail
    assert "1 audit entry" in page
