"""GET /api/v1/health/: status codes, the report's sections, no authentication, nothing secret;
and with a real worker, monitor and web server, the worker and the shard appear."""

import json
import time
import urllib.error
import urllib.request

import pytest
from django.conf import settings
from django.db import OperationalError

from monitor import live
from squirrel_site import health
from squirrel_site.testing import eventually
from squirrel_site.testing.ioc import Worker

URL = "/api/v1/health/"

pytestmark = pytest.mark.django_db


ONE_SHARD = live.Shard(0, 1)


@pytest.fixture
def monitor_beats(redis_db):
    """beat(shard, **stats): a heartbeat as a monitor leader writes it."""

    def write(shard=ONE_SHARD, **stats):
        stats = {
            "owner": "mon-host:41",
            "synced": True,
            "addresses": 450,
            "connected": 447,
            "updates_per_s": 812.5,
            "p95_age_s": 0.12,
            **stats,
        }
        live.write_heartbeat(redis_db, shard, stats)

    return write


@pytest.fixture
def worker_beat(redis_db):
    live.write_worker_heartbeat(
        redis_db,
        "celery@w1/7",
        {"name": "celery@w1", "pid": 7, "concurrency": 2, "active": 1, "started": time.time()},
        ttl=10.0,
    )


@pytest.fixture
def everything_up(monitor_beats, worker_beat):
    monitor_beats()


def test_everything_up_is_ok_for_anonymous_callers(client, everything_up):
    response = client.get(URL)

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] and body["redis"]["ok"]
    assert body["database"]["latency_ms"] >= 0 and body["redis"]["latency_ms"] >= 0


def test_the_shard_reports_leader_heartbeat_age_counts_rate_and_lag(client, everything_up):
    (shard,) = client.get(URL).json()["monitor"]["shards"]

    assert shard["heartbeat_age_s"] < 5
    assert {k: v for k, v in shard.items() if k != "heartbeat_age_s"} == {
        "shard": "0of1",
        "status": "ok",
        "leader": "mon-host:41",
        "synced": True,
        "addresses": 450,
        "connected": 447,
        "updates_per_s": 812.5,
        "lag_p95_s": 0.12,
        "degraded_iocs": [],
        "never_connected": {"count": 0, "addresses": []},
        "protocols": {  # none in this heartbeat: zeros, not an error
            "ca": {"addresses": 0, "connected": 0, "never_connected": 0},
            "pva": {"addresses": 0, "connected": 0, "never_connected": 0},
        },
    }


def test_the_shard_reports_pvaccess_counts_beside_channel_access_ones_and_a_pvaccess_server_down(
    client, redis_db, worker_beat, monitor_beats
):
    monitor_beats(
        addresses=450,
        connected=340,
        hosts={"ioc-a:5064": [300, 0], "127.0.0.1:5075": [40, 0], "10.0.0.7:5075": [0, 100], "": [0, 10]},
        protocols={
            "ca": {"addresses": 300, "connected": 300, "never_connected": 0},
            "pva": {"addresses": 150, "connected": 40, "never_connected": 10},
        },
    )

    (shard,) = client.get(URL).json()["monitor"]["shards"]

    assert shard["protocols"] == {
        "ca": {"addresses": 300, "connected": 300, "never_connected": 0},
        "pva": {"addresses": 150, "connected": 40, "never_connected": 10},
    }
    assert shard["status"] == "degraded"
    assert shard["degraded_iocs"] == [{"host": "10.0.0.7:5075", "connected": 0, "disconnected": 100}]


def test_protocol_counts_a_monitor_did_not_write_read_as_zeros(client, redis_db, worker_beat, monitor_beats):
    monitor_beats(protocols={"ca": {"addresses": "many", "connected": 3}, "pva": ["x"], "other": {}})

    (shard,) = client.get(URL).json()["monitor"]["shards"]

    assert shard["protocols"] == {
        "ca": {"addresses": 0, "connected": 3, "never_connected": 0},
        "pva": {"addresses": 0, "connected": 0, "never_connected": 0},
    }


def test_workers_are_counted_with_when_each_was_last_seen(client, everything_up):
    workers = client.get(URL).json()["workers"]

    assert (workers["status"], workers["count"]) == ("ok", 1)
    (worker,) = workers["workers"]
    assert (worker["name"], worker["pid"], worker["concurrency"], worker["active"]) == ("celery@w1", 7, 2, 1)
    assert worker["last_seen"].endswith("Z") and 0 <= worker["age_s"] < 5


def test_no_monitor_and_no_worker_is_degraded_but_still_serving(client, redis_db):
    response = client.get(URL)

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["monitor"] == {"status": "missing", "shards": []}
    assert body["workers"] == {"status": "missing", "count": 0, "workers": []}


@pytest.mark.parametrize("value", ["1", "true", "yes"])
def test_strict_answers_503_when_degraded(client, redis_db, worker_beat, value):
    response = client.get(URL, {"strict": value})

    assert response.status_code == 503 and response.json()["status"] == "degraded"


def test_an_unreadable_strict_is_a_400_naming_it(client, redis_db):
    response = client.get(URL, {"strict": "maybe"})

    assert response.status_code == 400 and "strict" in response.json()["error"]["fields"]


def test_strict_answers_200_when_everything_is_up(client, everything_up):
    assert client.get(URL, {"strict": "1"}).status_code == 200


def test_a_stale_shard_makes_the_report_degraded(client, redis_db, worker_beat, monitor_beats):
    monitor_beats(synced=False)

    body = client.get(URL).json()

    assert (body["status"], body["monitor"]["status"], body["monitor"]["shards"][0]["status"]) == (
        "degraded",
        "stale",
        "stale",
    )


def test_a_shard_whose_ioc_is_down_is_degraded_naming_the_ioc(client, redis_db, worker_beat, monitor_beats):
    monitor_beats(addresses=450, connected=300, hosts={"ioc-a:5064": [300, 0], "ioc-b:5064": [0, 150]})

    body = client.get(URL).json()

    (shard,) = body["monitor"]["shards"]
    assert (body["status"], body["monitor"]["status"], shard["status"]) == ("degraded", "degraded", "degraded")
    assert shard["degraded_iocs"] == [{"host": "ioc-b:5064", "connected": 0, "disconnected": 150}]


def test_strict_answers_503_with_retry_after_while_no_address_is_connected(
    client, redis_db, worker_beat, monitor_beats
):
    monitor_beats(addresses=3461, connected=0, hosts={"": [0, 3461]})

    response = client.get(URL, {"strict": "1"})

    assert (response.status_code, response["Retry-After"]) == (503, "5")
    (shard,) = response.json()["monitor"]["shards"]
    assert (shard["status"], shard["degraded_iocs"], shard["never_connected"]["count"]) == ("degraded", [], 3461)


def test_a_pv_whose_address_no_ioc_ever_answered_is_listed_without_degrading(
    client, redis_db, worker_beat, monitor_beats
):
    # The demo's offline PV: its address has no server; every other address is connected.
    monitor_beats(
        addresses=450, connected=449, hosts={"ioc-a:5064": [449, 0], "": [0, 1]}, never_connected=["DEMO:OFFLINE"]
    )

    response = client.get(URL, {"strict": "1"})

    assert response.status_code == 200
    body = response.json()
    (shard,) = body["monitor"]["shards"]
    assert (body["status"], shard["status"], shard["degraded_iocs"]) == ("ok", "ok", [])
    assert shard["never_connected"] == {"count": 1, "addresses": ["DEMO:OFFLINE"]}


def test_the_fraction_that_counts_as_connected_is_a_setting(client, redis_db, worker_beat, monitor_beats, settings):
    settings.HEALTH_MIN_CONNECTED = 0.5
    monitor_beats(addresses=450, connected=300, hosts={"ioc-a:5064": [300, 150]})

    assert client.get(URL, {"strict": "1"}).json()["status"] == "ok"


def test_a_missing_shard_is_listed(client, redis_db, worker_beat, monitor_beats):
    monitor_beats(live.Shard(1, 2))

    shards = client.get(URL).json()["monitor"]["shards"]

    assert [(s["shard"], s["status"], s["leader"]) for s in shards] == [
        ("0of2", "missing", None),
        ("1of2", "ok", "mon-host:41"),
    ]


def test_redis_down_is_503_with_monitor_and_workers_unknown(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"

    response = client.get(URL)

    assert response.status_code == 503
    body = response.json()
    assert (body["status"], body["redis"]["ok"], body["redis"]["error"]) == ("unavailable", False, "ConnectionError")
    assert body["monitor"]["status"] == body["workers"]["status"] == "unknown"
    assert body["workers"]["count"] is None


class BrokenConnection:
    """A database connection that fails the way an unreachable server does, with details in the message."""

    def cursor(self):
        raise OperationalError(
            'connection to server at "db.internal" (10.0.0.5), port 5432 failed: '
            'FATAL: password authentication failed for user "squirrel"'
        )


def test_database_down_is_503_reporting_only_the_error_class(client, everything_up, monkeypatch):
    monkeypatch.setattr(health, "connection", BrokenConnection())

    response = client.get(URL)

    assert response.status_code == 503
    body = response.json()
    assert (body["status"], body["database"]["ok"], body["database"]["error"]) == (
        "unavailable",
        False,
        "OperationalError",
    )
    assert "db.internal" not in response.content.decode() and "squirrel" not in response.content.decode()


def test_nothing_from_the_settings_is_in_the_answer(client, everything_up):
    text = client.get(URL).content.decode()

    for secret in (settings.SECRET_KEY, settings.REDIS_URL, settings.DATABASES["default"]["NAME"]):
        assert secret not in text


def test_a_bad_token_does_not_matter(client, everything_up):
    assert client.get(URL, HTTP_AUTHORIZATION="Token sqt_not-a-token").status_code == 200


@pytest.mark.parametrize("accept", ["text/plain", "text/html", "*/*"])
def test_any_accept_header_gets_json(client, everything_up, accept):
    response = client.get(URL, HTTP_ACCEPT=accept)

    assert (response.status_code, response["Content-Type"]) == (200, "application/json")


def test_the_answer_is_never_cached(client, everything_up):
    assert "no-store" in client.get(URL)["Cache-Control"]


def test_the_check_runs_one_query(client, everything_up, django_assert_num_queries):
    with django_assert_num_queries(1):
        client.get(URL)


def fetch(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def wait_for_report(url: str, predicate, timeout: float = 20.0) -> dict:
    def matching() -> dict:
        _, body = fetch(url)
        assert predicate(body), body
        return body

    return eventually(matching, timeout, interval=0.2, what="the health report matching")


@pytest.mark.ioc
@pytest.mark.worker
def test_a_real_worker_and_monitor_appear_and_a_stopped_worker_leaves(site, sim_ioc_registry, tmp_path):
    status, body = fetch(f"{site}{URL}?strict=1")

    assert (status, body["status"]) == (200, "ok"), body
    (shard,) = body["monitor"]["shards"]
    assert (shard["shard"], shard["status"], shard["synced"]) == ("0of1", "ok", True)
    assert shard["leader"] and shard["connected"] > 0 and shard["heartbeat_age_s"] < 5
    (first,) = body["workers"]["workers"]
    assert first["name"].startswith("celery@") and first["concurrency"] == 2

    second = Worker(tmp_path / "second-worker.log")
    try:
        body = wait_for_report(f"{site}{URL}", lambda report: report["workers"]["count"] == 2)
        assert {w["pid"] for w in body["workers"]["workers"]} == {first["pid"], second.process.pid}
    finally:
        second.stop()
    # A worker that shuts down removes its heartbeat: gone well before the heartbeat would expire.
    wait_for_report(f"{site}{URL}", lambda report: report["workers"]["count"] == 1, timeout=5.0)


@pytest.mark.ioc
@pytest.mark.worker
def test_a_real_monitor_whose_ioc_stops_is_degraded_naming_the_ioc(site, restartable_sim_ioc):
    assert fetch(f"{site}{URL}?strict=1")[0] == 200

    restartable_sim_ioc.stop()
    body = wait_for_report(f"{site}{URL}", lambda report: report["monitor"]["status"] == "degraded")

    (shard,) = body["monitor"]["shards"]
    assert (body["status"], shard["status"], shard["connected"]) == ("degraded", "degraded", 0)
    (ioc,) = shard["degraded_iocs"]
    assert ioc["host"].endswith(f":{restartable_sim_ioc.port}") and ioc["disconnected"] == shard["addresses"]
    assert fetch(f"{site}{URL}")[0] == 200 and fetch(f"{site}{URL}?strict=1")[0] == 503
