"""API tokens for scripts: the create_api_token and revoke_api_token commands, and what a token can do."""

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from knox.models import AuthToken

from squirrel_site.audit import AuditAction, AuditVia
from squirrel_site.models import AuditEntry
from squirrel_site.tokens import create_token

pytestmark = pytest.mark.django_db
URL = "/api/v1/jobs/"


def create(*args) -> str:
    out = io.StringIO()
    call_command("create_api_token", *args, stdout=out)
    return out.getvalue()


def revoke(*args) -> str:
    out = io.StringIO()
    call_command("revoke_api_token", *args, stdout=out)
    return out.getvalue()


def status_with(client, token: str) -> int:
    return client.get(URL, HTTP_AUTHORIZATION=f"Token {token}").status_code


def test_the_command_prints_only_the_token_which_authenticates(client, viewer):
    output = create(viewer.username)
    token = output.strip()
    assert output == token + "\n" and token.startswith("sqt_")
    assert status_with(client, token) == 200


def test_the_command_sets_the_expiry(viewer):
    create(viewer.username, "--expires-in-days", "30")
    token = AuthToken.objects.get(user=viewer)
    assert abs(token.expiry - (timezone.now() + timedelta(days=30))) < timedelta(minutes=1)


def test_without_expiry_a_token_never_expires(viewer):
    create(viewer.username)
    assert AuthToken.objects.get(user=viewer).expiry is None


@pytest.mark.parametrize("username", ["nobody-here", "retired"])
def test_unknown_and_inactive_users_get_no_token(django_user_model, username):
    django_user_model.objects.create_user("retired", is_active=False)
    with pytest.raises(CommandError) as error:
        create(username)
    assert "\n" not in str(error.value) and username in str(error.value)
    assert not AuthToken.objects.exists()


def test_an_expiry_must_be_at_least_a_day(viewer):
    with pytest.raises(CommandError, match="at least 1"):
        create(viewer.username, "--expires-in-days", "0")
    assert not AuthToken.objects.exists()


def test_issuing_a_token_is_audited(viewer):
    create(viewer.username)
    token = AuthToken.objects.get()
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.via, entry.actor, entry.target_id) == (
        AuditAction.TOKEN_CREATED,
        AuditVia.COMMAND,
        None,
        str(viewer.pk),
    )
    assert entry.details["token_key"] == token.token_key and token.token_key in entry.summary


def test_a_revoked_token_stops_working_and_the_revocation_is_audited(client, viewer):
    token = create(viewer.username).strip()
    key = AuthToken.objects.get().token_key
    assert revoke(key) == "Revoked 1 token.\n"
    assert status_with(client, token) == 401
    revoked = AuditEntry.objects.get(action=AuditAction.TOKEN_REVOKED)
    assert (revoked.via, revoked.target_id, revoked.details["token_key"]) == (AuditVia.COMMAND, str(viewer.pk), key)


def test_the_whole_token_names_it_too(viewer):
    token = create(viewer.username).strip()
    revoke(token)
    assert not AuthToken.objects.exists()


def test_all_of_a_users_tokens_are_revoked_at_once(viewer, editor):
    create(viewer.username)
    create(viewer.username)
    kept = create(editor.username)
    assert revoke("--all-for", viewer.username) == "Revoked 2 tokens.\n"
    assert list(AuthToken.objects.values_list("user", flat=True)) == [editor.pk] and kept


@pytest.mark.parametrize("args", [["sqt_nosuchtoken"], ["sqt_"], ["--all-for", "nobody-here"]])
def test_revoking_what_does_not_exist_is_an_error(args):
    with pytest.raises(CommandError):
        revoke(*args)


def test_a_deactivated_users_tokens_stop_working(client, viewer):
    token = create(viewer.username).strip()
    viewer.is_active = False
    viewer.save()
    assert status_with(client, token) == 401


def test_an_expired_token_is_refused(client, viewer):
    _, token = create_token(viewer, actor=None, via=AuditVia.COMMAND, expires_in=timedelta(days=1))
    AuthToken.objects.update(expiry=timezone.now() - timedelta(seconds=1))
    assert status_with(client, token) == 401


def test_a_token_carries_its_users_role_only(client, make_user):
    _, token = create_token(make_user(None), actor=None, via=AuditVia.COMMAND)
    assert status_with(client, token) == 403
