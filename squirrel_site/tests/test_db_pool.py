"""The database connection pool: web processes only, sized from SQUIRREL_WEB_CONCURRENCY, and
no connection in time is an OperationalError (which every view answers 503)."""

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.db import OperationalError, connection
from django.db.backends.postgresql.base import DatabaseWrapper

from squirrel_site.errors import ServiceUnavailableMiddleware

PRINT_DATABASE = (
    "from django.conf import settings; d = settings.DATABASES['default'];"
    "print(json.dumps({'options': d['OPTIONS'], 'max_age': d['CONN_MAX_AGE'], 'checks': d['CONN_HEALTH_CHECKS']}))"
)


def database_settings(module: str, **env) -> dict:
    """DATABASES["default"] as a fresh process sees it after importing `module` first."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("SQUIRREL_DB_POOL", "DJANGO_SETTINGS_MODULE")}
    full_env |= {"SQUIRREL_SECRET_KEY": "pool-test", "DJANGO_SETTINGS_MODULE": "squirrel_site.settings", **env}
    code = f"import json, {module}; {PRINT_DATABASE}"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=settings.BASE_DIR, env=full_env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.slow  # starts Squirrel's own processes, as do the other slow tests here
def test_the_web_application_takes_connections_from_a_pool_sized_by_its_concurrency():
    database = database_settings("squirrel_site.asgi", SQUIRREL_WEB_CONCURRENCY="6", SQUIRREL_DB_POOL_TIMEOUT="2.5")

    assert database["options"]["pool"] == {"min_size": 2, "max_size": 7, "timeout": 2.5}
    assert (database["max_age"], database["checks"]) == (0, True)


@pytest.mark.slow
def test_workers_beat_and_the_monitor_open_their_own_connections():
    # They load the settings through squirrel_site.celery or manage.py, never through asgi.py.
    database = database_settings("squirrel_site.celery")

    assert "pool" not in database["options"] and database["checks"] is False


@pytest.mark.slow
def test_the_pool_can_be_turned_off_for_the_web_application():
    assert "pool" not in database_settings("squirrel_site.asgi", SQUIRREL_DB_POOL="0")["options"]


@pytest.mark.slow
def test_persistent_connections_with_the_pool_are_refused_at_start():
    full_env = dict(
        os.environ,
        SQUIRREL_SECRET_KEY="pool-test",
        SQUIRREL_DB_POOL="1",
        SQUIRREL_DB_CONN_MAX_AGE="60",
        DJANGO_SETTINGS_MODULE="squirrel_site.settings",
    )
    result = subprocess.run(
        [sys.executable, "-c", "import squirrel_site.settings"],
        cwd=settings.BASE_DIR,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0 and "SQUIRREL_DB_CONN_MAX_AGE must be 0" in result.stderr


@pytest.fixture
def pool_of_one(db, django_db_blocker):
    """Two connection wrappers sharing a pool of one connection (to the test database) that waits
    0.2 s for it."""
    options = {**connection.settings_dict["OPTIONS"], "pool": {"min_size": 1, "max_size": 1, "timeout": 0.2}}
    settings_dict = {**connection.settings_dict, "OPTIONS": options}
    # Named "default" because django.contrib.postgres looks the alias up when a connection opens;
    # the test's own default connection has no pool, so this one is theirs alone.
    holder, waiter = DatabaseWrapper(settings_dict, "default"), DatabaseWrapper(settings_dict, "default")
    with django_db_blocker.unblock():
        try:
            yield holder, waiter
        finally:
            holder.close()
            waiter.close()
            holder.close_pool()


def test_no_pooled_connection_in_time_is_an_operational_error_answered_503(pool_of_one, rf):
    holder, waiter = pool_of_one
    holder.ensure_connection()

    with pytest.raises(OperationalError) as raised:
        waiter.ensure_connection()

    assert type(raised.value.__cause__).__name__ == "PoolTimeout"
    response = ServiceUnavailableMiddleware(None).process_exception(rf.get("/api/v1/pvs/"), raised.value)
    assert response.status_code == 503 and response["Retry-After"]
