"""Login throttling (django-axes, squirrel_site/login_throttle.py): failures per user name and
address, the lockout page, the cool-off, unlocking, and the audit entry of each lockout."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.core.management import call_command
from django.test import RequestFactory, override_settings
from django.utils import timezone

from squirrel_site.audit import AuditAction
from squirrel_site.login_throttle import client_ip_address
from squirrel_site.models import AuditEntry, AuditVia

pytestmark = pytest.mark.django_db

LIMIT = settings.AXES_FAILURE_LIMIT
OPERATOR_IP, ELSEWHERE_IP = "10.0.0.7", "10.0.0.8"


@pytest.fixture
def person(django_user_model):
    return django_user_model.objects.create_user("op", password="right-pass")


def log_in(client, password: str, ip: str = OPERATOR_IP, path: str = "/accounts/login/"):
    return client.post(path, {"username": "op", "password": password}, REMOTE_ADDR=ip)


def fail_until_locked(client) -> list:
    return [log_in(client, "wrong-pass") for _ in range(LIMIT)]


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_failures_below_the_limit_show_the_usual_error_and_allow_a_login(client, person):
    answers = [log_in(client, "wrong-pass") for _ in range(LIMIT - 1)]
    assert {answer.status_code for answer in answers} == {200}
    assert b"Please enter a correct" in answers[-1].content
    assert log_in(client, "right-pass").status_code == 302
    assert logged_in(client)


def test_the_failure_at_the_limit_answers_the_lockout_page(client, person):
    locked = fail_until_locked(client)[-1]
    assert locked.status_code == 429
    assert locked["Retry-After"] == str(settings.AXES_COOLOFF_TIME.seconds)
    assert b'id="lockout"' in locked.content and b"Too many failed logins" in locked.content
    assert b'id="id_username"' in locked.content  # the login form, to try again later


def test_the_right_password_is_refused_while_locked_out(client, person):
    fail_until_locked(client)
    answer = log_in(client, "right-pass")
    assert answer.status_code == 429
    assert not logged_in(client)


def test_the_same_user_name_from_another_address_is_not_locked_out(client, person):
    fail_until_locked(client)
    assert log_in(client, "right-pass", ip=ELSEWHERE_IP).status_code == 302


def test_after_the_cooloff_the_right_password_logs_in(client, person):
    fail_until_locked(client)
    past_cooloff = timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1)
    AccessAttempt.objects.update(attempt_time=past_cooloff)
    assert log_in(client, "right-pass").status_code == 302
    assert logged_in(client)


def test_a_success_resets_the_count(client, person):
    for _ in range(LIMIT - 1):
        log_in(client, "wrong-pass")
    log_in(client, "right-pass")
    client.logout()
    assert log_in(client, "wrong-pass").status_code == 200


def test_the_admin_unlocks_with_axes_reset_username(client, person):
    fail_until_locked(client)
    call_command("axes_reset_username", "op")
    assert log_in(client, "right-pass").status_code == 302


def test_the_admin_login_form_is_throttled_too(client, person):
    answers = [log_in(client, "wrong-pass", path="/admin/login/") for _ in range(LIMIT)]
    assert answers[-1].status_code == 429
    assert AuditEntry.objects.get(action=AuditAction.LOGIN_LOCKED_OUT).via == AuditVia.ADMIN


def test_a_lockout_is_audited_once(client, person):
    fail_until_locked(client)
    log_in(client, "wrong-pass")  # refused during the lockout: axes' log, not another audit entry
    log_in(client, "right-pass")
    entry = AuditEntry.objects.get(action=AuditAction.LOGIN_LOCKED_OUT)
    assert entry.actor is None and entry.via == AuditVia.PAGE
    assert (entry.target_type, entry.target_id) == ("auth.user", str(person.pk))
    assert entry.details == {
        "username": "op",
        "ip_address": OPERATOR_IP,
        "failures": LIMIT,
        "cooloff_minutes": settings.AXES_COOLOFF_TIME.seconds // 60,
    }


def test_an_unknown_user_name_is_locked_out_and_audited_without_a_target(client):
    answers = [client.post("/accounts/login/", {"username": "nobody", "password": "x"}) for _ in range(LIMIT)]
    assert answers[-1].status_code == 429
    entry = AuditEntry.objects.get(action=AuditAction.LOGIN_LOCKED_OUT)
    assert (entry.target_type, entry.details["username"]) == ("", "nobody")


def test_the_client_address_is_the_peer_unless_behind_the_tls_proxy():
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="1.2.3.4, 192.0.2.9")
    assert client_ip_address(request) == "10.0.0.1"
    with override_settings(BEHIND_TLS_PROXY=True):
        assert client_ip_address(request) == "192.0.2.9"  # what the proxy appended, not the client's claim
