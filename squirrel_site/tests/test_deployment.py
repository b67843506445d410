"""Production settings from the environment: `check --deploy` with the README's variables, HTTPS
behind a TLS proxy, Secure cookies, HSTS, and a bad value naming its variable.

Settings are read once per process, so the environment's effect is seen in a subprocess.
"""

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings

README = Path(settings.BASE_DIR) / "README.md"
SUBPROCESS_TIMEOUT = 120


def production_variables() -> dict[str, str]:
    """The variables of the README's "Production" block; a `<placeholder>` becomes a random secret."""
    section = README.read_text().split("### Production\n", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL).group(1)
    variables = {}
    for line in block.splitlines():
        name, value = line.split("#", 1)[0].strip().split("=", 1)
        variables[name] = secrets.token_urlsafe(50) if value.startswith("<") else value
    return variables


def manage(*args: str, **variables: str) -> subprocess.CompletedProcess:
    """`manage.py args` with the production settings module and only these SQUIRREL_* variables."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("SQUIRREL_")}
    env.update(variables, DJANGO_SETTINGS_MODULE="squirrel_site.settings")
    command = [sys.executable, "manage.py", *args]
    return subprocess.run(
        command, cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT
    )


def settings_in_subprocess(*names: str, **variables: str) -> dict:
    """The named settings as a process started with these variables reads them."""
    code = (
        "import json; from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n) for n in {names!r}}}))"
    )
    result = manage("shell", "-c", code, **variables)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # starts Squirrel's own processes, as do the other slow tests here
def test_check_deploy_is_clean_with_the_readme_production_variables():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **production_variables())
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.slow
def test_check_deploy_warns_about_https_without_them():
    result = manage("check", "--deploy", "--fail-level", "WARNING", SQUIRREL_SECRET_KEY=secrets.token_urlsafe(50))
    assert result.returncode != 0
    assert {"security.W004", "security.W008"} <= set(re.findall(r"security\.W\d+", result.stderr))


@pytest.mark.slow
def test_cookies_are_secure_unless_debug_or_turned_off():
    key = secrets.token_urlsafe(50)
    production = settings_in_subprocess("SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", SQUIRREL_SECRET_KEY=key)
    demo = settings_in_subprocess("SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", SQUIRREL_DEBUG="1")
    plain = settings_in_subprocess("SESSION_COOKIE_SECURE", SQUIRREL_SECRET_KEY=key, SQUIRREL_SECURE_COOKIES="0")
    assert production == {"SESSION_COOKIE_SECURE": True, "CSRF_COOKIE_SECURE": True}
    assert demo == {"SESSION_COOKIE_SECURE": False, "CSRF_COOKIE_SECURE": False}
    assert plain == {"SESSION_COOKIE_SECURE": False}


@pytest.mark.slow
def test_the_production_variables_set_hsts_redirect_and_the_proxy_header():
    names = (
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_HSTS_PRELOAD",
        "SECURE_SSL_REDIRECT",
        "SECURE_PROXY_SSL_HEADER",
    )
    assert settings_in_subprocess(*names, **production_variables()) == {
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": True,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SQUIRREL_HSTS_SECONDS", "-1", "SQUIRREL_HSTS_SECONDS must be at least 0"),
        ("SQUIRREL_SSL_REDIRECT", "maybe", "SQUIRREL_SSL_REDIRECT must be a boolean"),
        ("SQUIRREL_LOGIN_FAILURE_LIMIT", "0", "SQUIRREL_LOGIN_FAILURE_LIMIT must be at least 1"),
        ("SQUIRREL_LOGIN_COOLOFF_MINUTES", "soon", "SQUIRREL_LOGIN_COOLOFF_MINUTES must be an integer"),
        ("SQUIRREL_LIVE_STALE_SECONDS", "1", "SQUIRREL_LIVE_STALE_SECONDS must be from 2 to 3600 seconds"),
    ],
)
def test_a_bad_value_stops_the_process_naming_the_variable(name, value, message):
    result = manage("check", SQUIRREL_DEBUG="1", **{name: value})
    assert result.returncode != 0
    assert message in result.stderr


# The middleware reads these settings when the test client's handler first loads it.
BEHIND_PROXY = {
    "SECURE_SSL_REDIRECT": True,
    "SECURE_PROXY_SSL_HEADER": ("HTTP_X_FORWARDED_PROTO", "https"),
    "SECURE_HSTS_SECONDS": 3600,
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
}


@override_settings(**BEHIND_PROXY)
def test_behind_the_proxy_plain_http_is_redirected_to_https(client):
    response = client.get("/accounts/login/", HTTP_HOST="127.0.0.1")
    assert response.status_code == 301
    assert response["Location"] == "https://127.0.0.1/accounts/login/"


@override_settings(**BEHIND_PROXY)
def test_behind_the_proxy_https_is_served_with_hsts(client):
    response = client.get("/accounts/login/", headers={"x-forwarded-proto": "https"})
    assert response.status_code == 200
    assert response["Strict-Transport-Security"] == "max-age=3600; includeSubDomains"


@pytest.mark.django_db
@override_settings(**BEHIND_PROXY)
def test_the_health_endpoint_answers_plain_http_for_load_balancers(client, redis_db):
    response = client.get("/api/v1/health/")
    assert response.status_code in (200, 503)  # the answer, whichever it is, not a redirect
    assert "status" in response.json()


def test_the_login_page_sets_a_secure_csrf_cookie(client):
    response = client.get("/accounts/login/")
    assert response.cookies["csrftoken"]["secure"] is True
