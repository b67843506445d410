"""manage.py's entry point: Django's command line, with a database it cannot reach told in one line.

A bad or missing setting already stops any process with one line (squirrel_site.env.SettingError).
A PostgreSQL that does not answer, a database that does not exist or a refused login is found
later, when a command first connects: instead of the driver's traceback, one line names the
database, the reason and the settings to change. Other database errors keep their traceback.

`runserver` is Django's development server (the web process is `python -m squirrel_site.web_server`,
README "Processes"). Its autoreloader runs the server in a thread that prints a database error's
traceback and then waits for a file to change, so the database is checked before it starts.
"""

import traceback

import django
from django.conf import settings
from django.core.management import execute_from_command_line
from django.db import OperationalError, connection

from squirrel_site.env import SettingError


def main(argv: list[str]) -> None:
    try:
        if argv[1:2] == ["runserver"]:
            _check_database()
        execute_from_command_line(argv)
    except OperationalError as exc:
        if not _while_connecting(exc):
            raise  # connected, then failed: not a matter of settings
        raise SettingError(database_unreachable(exc)) from None


def _while_connecting(exc: BaseException) -> bool:
    """Whether the error was raised opening a connection (in the backend's get_new_connection)."""
    return any(frame.f_code.co_name == "get_new_connection" for frame, _ in traceback.walk_tb(exc.__traceback__))


def _check_database() -> None:
    django.setup()
    connection.ensure_connection()
    connection.close()


def database_unreachable(exc: Exception) -> str:
    """One line: which database could not be reached, why, and which settings to change."""
    db = settings.DATABASES["default"]
    reason = _reason(exc)
    where = f"PostgreSQL database {db['NAME']!r} at {db['HOST']}:{db['PORT']} as user {db['USER']!r}"
    if "does not exist" in reason and "database" in reason:
        fix = "create it (createdb), or set SQUIRREL_DB_NAME to one that exists (bash .ci/demo creates the demo's)"
    elif "authentication" in reason or "password" in reason or "role" in reason:
        fix = "set SQUIRREL_DB_USER and SQUIRREL_DB_PASSWORD"
    else:
        fix = "start PostgreSQL there, or set SQUIRREL_DB_HOST and SQUIRREL_DB_PORT to where it runs"
    return f"cannot connect to the {where}: {reason}. To fix: {fix}."


def _reason(exc: Exception) -> str:
    """The server's or the network's words from psycopg's message, without its preamble."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    text = text.removeprefix("connection failed: ")
    if " failed: " in text:  # 'connection to server at "h", port p failed: <reason>'
        text = text.rsplit(" failed: ", 1)[1]
    return text.removeprefix("FATAL:").strip().rstrip(".")
