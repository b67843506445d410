"""A bad or missing setting, or a database that cannot be reached, stops a process with one line
naming the setting and the fix, exit status 1 and no traceback, whichever entry point it is:
manage.py (runserver included), the web server, the Celery worker and beat.

Settings are read once per process, so each case runs in a subprocess.
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from squirrel_site.env import SettingError, env_bool, env_float, env_int, env_str

TIMEOUT = 60
CELERY = str(Path(sys.executable).parent / "celery")
WEB_SERVER = [sys.executable, "-m", "squirrel_site.web_server", "-b", "127.0.0.1", "-p", "0"]
WEB_SERVER_APP = "squirrel_site.asgi:application"


def run(command: list[str], **variables: str) -> subprocess.CompletedProcess:
    """`command` in the repository with the production settings module and only these SQUIRREL_* variables."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("SQUIRREL_")}
    env.update(variables, DJANGO_SETTINGS_MODULE="squirrel_site.settings")
    return subprocess.run(command, cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=TIMEOUT)


def manage(*args: str, **variables: str) -> subprocess.CompletedProcess:
    return run([sys.executable, "manage.py", *args], **variables)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The process failed with exactly one line on stderr and no traceback; that line."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow  # starts Squirrel's own processes, as do the other slow tests here
def test_bare_runserver_without_a_secret_key_says_which_variable_to_set():
    line = one_line_error(manage("runserver", "127.0.0.1:0"))

    assert "SQUIRREL_SECRET_KEY" in line and "SQUIRREL_DEBUG=1" in line


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        pytest.param([sys.executable, "manage.py", "check"], id="manage.py"),
        pytest.param([*WEB_SERVER, WEB_SERVER_APP], id="web"),
        pytest.param([CELERY, "-A", "squirrel_site", "worker", "--pool", "solo"], id="worker"),
        pytest.param([CELERY, "-A", "squirrel_site", "beat"], id="beat"),
        pytest.param([sys.executable, "manage.py", "monitor_pvs"], id="monitor"),
    ],
)
def test_every_entry_point_stops_on_a_bad_number_with_one_line(command):
    line = one_line_error(run(command, SQUIRREL_DEBUG="1", SQUIRREL_WEB_CONCURRENCY="eight"))

    assert line == (
        "error: SQUIRREL_WEB_CONCURRENCY must be an integer, not 'eight': set it to a whole number, "
        "or unset it for the default (8)."
    )


@pytest.mark.slow
def test_a_rule_between_settings_names_both_and_the_fix():
    line = one_line_error(manage("check", SQUIRREL_DEBUG="1", SQUIRREL_DB_POOL="1", SQUIRREL_DB_CONN_MAX_AGE="60"))

    assert "SQUIRREL_DB_CONN_MAX_AGE must be 0" in line and "SQUIRREL_DB_POOL=0" in line


@pytest.mark.slow
def test_a_command_that_cannot_reach_postgresql_names_the_host_and_port_settings():
    port = closed_port()
    line = one_line_error(manage("create_api_token", "admin", SQUIRREL_DEBUG="1", SQUIRREL_DB_PORT=str(port)))

    assert f"at 127.0.0.1:{port}" in line and "Connection refused" in line
    assert "SQUIRREL_DB_HOST and SQUIRREL_DB_PORT" in line


@pytest.mark.slow
def test_runserver_that_cannot_reach_postgresql_stops_at_once_with_one_line():
    # Without the check before the autoreloader, the server thread prints a traceback and the
    # process waits for a file to change (this would time out).
    line = one_line_error(manage("runserver", "127.0.0.1:0", SQUIRREL_DEBUG="1", SQUIRREL_DB_PORT=str(closed_port())))

    assert "Connection refused" in line and "SQUIRREL_DB_PORT" in line


@pytest.mark.slow
def test_a_database_that_does_not_exist_names_the_database_setting():
    line = one_line_error(manage("create_api_token", "admin", SQUIRREL_DEBUG="1", SQUIRREL_DB_NAME="squirrel_no_such"))

    assert 'database "squirrel_no_such" does not exist' in line and "SQUIRREL_DB_NAME" in line


@pytest.mark.slow
def test_a_refused_login_names_the_user_and_password_settings():
    line = one_line_error(manage("create_api_token", "admin", SQUIRREL_DEBUG="1", SQUIRREL_DB_USER="squirrel_nobody"))

    assert "squirrel_nobody" in line and "SQUIRREL_DB_USER and SQUIRREL_DB_PASSWORD" in line


@pytest.mark.slow
@pytest.mark.django_db
def test_a_database_error_after_connecting_keeps_its_traceback():
    # Connected, then the server ended the session: a fault of the moment, not of the settings.
    database = settings.DATABASES["default"]
    code = (
        "from django.db import connection; connection.cursor().execute('SELECT pg_terminate_backend(pg_backend_pid())')"
    )
    result = manage(
        "shell",
        "-c",
        code,
        SQUIRREL_DEBUG="1",
        SQUIRREL_DB_NAME=database["NAME"],
        SQUIRREL_DB_HOST=database["HOST"],
        SQUIRREL_DB_PORT=str(database["PORT"]),
    )

    assert result.returncode != 0
    assert "Traceback" in result.stderr and "OperationalError" in result.stderr


def test_the_helpers_raise_a_setting_error_naming_the_variable_and_the_fix(monkeypatch):
    monkeypatch.setenv("SQUIRREL_X", "many")
    with pytest.raises(SettingError) as caught:
        env_int("SQUIRREL_X", 3, minimum=1)
    assert caught.value.message == (
        "SQUIRREL_X must be an integer, not 'many': set it to a whole number from 1, or unset it for the default (3)."
    )
    assert caught.value.code == f"error: {caught.value.message}"  # what the interpreter prints

    monkeypatch.setenv("SQUIRREL_X", "0")
    with pytest.raises(SettingError, match="SQUIRREL_X must be at least 1, not '0'"):
        env_int("SQUIRREL_X", 3, minimum=1)
    monkeypatch.setenv("SQUIRREL_X", "maybe")
    with pytest.raises(SettingError, match=r"must be a boolean .* unset it for the default \(0\)"):
        env_bool("SQUIRREL_X", False)
    monkeypatch.setenv("SQUIRREL_X", "inf")
    with pytest.raises(SettingError, match="must be a finite number, not 'inf'"):
        env_float("SQUIRREL_X", 1.5)
    monkeypatch.delenv("SQUIRREL_X")
    with pytest.raises(SettingError, match="^error: Set the environment variable SQUIRREL_X: a hint$"):
        env_str("SQUIRREL_X", hint="a hint")
    assert env_int("SQUIRREL_X", 3) == 3
