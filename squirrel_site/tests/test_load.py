"""A real web process (daphne, the production settings: the pool and admission control) under 200
concurrent API list requests and 200 concurrent health probes, each client one request on
loopback: nothing answers 500, the process never holds more database connections than its budget,
other processes still connect, and its memory stays bounded. And with PostgreSQL unreachable, the
pool's timeout answers 503, not 500."""

import json
import urllib.error
import urllib.request

import pytest
from django.conf import settings
from django.db import connection
from knox.models import AuthToken

from pvs.models import PV
from squirrel_site.testing.load import ConnectionWatch, WebProcess, burst, database_dsn, summary
from squirrel_site.testing.site import free_port

pytestmark = pytest.mark.load

PVS = 3000
CLIENTS = 200
CONCURRENCY = 8
# One connection per running request and one for the WebSocket consumers (settings.DB_POOL_SIZE).
CONNECTION_BUDGET = CONCURRENCY + 1
# daphne with Django loaded is ~110 MB here; 400 requests at once must not double it.
RSS_LIMIT_MB = 250
APP_NAME = "squirrel-load-web"


@pytest.fixture
def token(transactional_db, make_user):
    PV.objects.bulk_create(
        PV(setpoint_address=f"LOAD:DEV{i}:SP", readback_address=f"LOAD:DEV{i}:RBV", device=f"DEV{i}")
        for i in range(PVS)
    )
    _, token = AuthToken.objects.create(user=make_user("viewer"))
    return token


def web_process(tmp_path, **env) -> WebProcess:
    env = {
        "SQUIRREL_DB_NAME": connection.settings_dict["NAME"],
        "SQUIRREL_REDIS_URL": settings.REDIS_URL,
        "SQUIRREL_STATIC_ROOT": str(tmp_path / "static"),
        "SQUIRREL_WEB_CONCURRENCY": str(CONCURRENCY),
        **env,
    }
    return WebProcess(free_port(), APP_NAME, tmp_path / "daphne.log", settings.BASE_DIR, env)


def test_400_concurrent_requests_get_200_or_503_within_the_connection_budget(token, redis_db, tmp_path):
    web = web_process(tmp_path)
    dsn = database_dsn(connection.settings_dict)
    try:
        requests = [(f"{web.url}/api/v1/pvs/?page_size=100", {"Authorization": f"Token {token}"})] * CLIENTS
        requests += [(f"{web.url}/api/v1/health/", {})] * CLIENTS
        with ConnectionWatch(dsn, APP_NAME) as watch:
            answers = burst(requests)
        rss = web.rss_mb()
        alive = web.process.poll() is None
    finally:
        web.stop()

    figures = summary(answers)
    assert set(figures["statuses"]) <= {200, 503}, (figures, web.log()[-3000:])
    assert figures["statuses"].get(200, 0) >= CONCURRENCY, figures
    assert all(answer.retry_after for answer in answers if answer.status == 503)
    assert 0 < watch.most <= CONNECTION_BUDGET, watch.most
    assert watch.probes and all(ok for ok, _ in watch.probes), watch.probes
    assert alive and rss < RSS_LIMIT_MB, rss


def test_with_postgresql_unreachable_no_pooled_connection_in_time_answers_503(token, redis_db, tmp_path):
    web = web_process(tmp_path, SQUIRREL_DB_PORT=str(free_port()), SQUIRREL_DB_POOL_TIMEOUT="1")
    request = urllib.request.Request(f"{web.url}/api/v1/pvs/", headers={"Authorization": f"Token {token}"})
    try:
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(request, timeout=10)
    finally:
        web.stop()

    assert answer.value.code == 503 and answer.value.headers["Retry-After"]
    error = json.load(answer.value)["error"]
    assert error["code"] == "service_unavailable"
    assert error["message"] == "The database is unreachable; nothing was done. Try again shortly."
