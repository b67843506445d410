"""Every process outlives Redis and PostgreSQL outages and recovers by itself.

Each test runs the real processes (squirrel_site.testing) on a private PostgreSQL and Redis that
it kills or stops, and asks afterwards what an operator would: are the processes alive, does a
new job run, does health answer 200, is the monitor's heartbeat fresh.
"""

import pytest

from squirrel_site.testing import eventually

pytestmark = [pytest.mark.fault, pytest.mark.worker, pytest.mark.ioc]


def test_worker_survives_redis_killed_and_restarted_empty_while_it_runs_a_job(squirrel):
    squirrel.start("web", "worker")
    addresses = squirrel.addresses(20)
    job_id = squirrel.take_snapshot(addresses)
    eventually(lambda: squirrel.job(job_id)["status"] == "running", 30, interval=0.02, what="job running")
    squirrel.redis.restart()
    assert squirrel.wait_for_job(job_id)["status"] == "succeeded"
    eventually(lambda: squirrel.get("/api/v1/health/").json()["workers"]["count"] == 1, 30, what="worker heartbeat")
    assert squirrel.dead() == []
    job_id = squirrel.take_snapshot(addresses, "after the outage")
    assert squirrel.wait_for_job(job_id)["status"] == "succeeded"
    assert squirrel.dead() == []
