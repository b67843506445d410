"""Judging the monitor's shards from their heartbeats: pure functions, plus one read from Redis."""

import pytest

from monitor import health, live
from monitor.health import MISSING, OK, STALE, judge_shards, overall_status

NOW = 1_700_000_000.0


def beat(shard: str, age: float = 0.5, synced: bool = True, **stats) -> dict:
    return {"shard": shard, "written_at": NOW - age, "synced": synced, **stats}


def statuses(beats) -> list[tuple[str, str]]:
    return [(shard.shard, shard.status) for shard in judge_shards(beats, NOW)]


def test_a_recent_synced_heartbeat_is_ok_with_its_age():
    (shard,) = judge_shards([beat("0of1", age=1.25, owner="host:12")], NOW)

    assert (shard.status, shard.age, shard.beat["owner"]) == (OK, 1.25, "host:12")


def test_an_old_heartbeat_is_stale():
    assert statuses([beat("0of1", age=health.MAX_HEARTBEAT_AGE + 0.1)]) == [("0of1", STALE)]


def test_a_leader_still_filling_the_cache_is_stale():
    assert statuses([beat("0of1", synced=False)]) == [("0of1", STALE)]


def test_a_shard_missing_from_a_split_is_reported_missing():
    assert statuses([beat("0of3"), beat("2of3")]) == [("0of3", OK), ("1of3", MISSING), ("2of3", OK)]


@pytest.mark.parametrize("bad", [{"shard": "0of1"}, {"shard": "0of1", "written_at": "soon"}, {"shard": "zero"}])
def test_a_heartbeat_this_version_did_not_write_is_stale(bad):
    assert [shard.status for shard in judge_shards([{"synced": True, **bad}], NOW)] == [STALE]


@pytest.mark.parametrize(
    ("states", "expected"),
    [([OK, OK], OK), ([OK, STALE], STALE), ([STALE, MISSING, OK], MISSING), ([], MISSING)],
)
def test_the_overall_status_is_the_worst_shards(states, expected):
    assert overall_status([health.ShardHealth(f"{i}of9", state) for i, state in enumerate(states)]) == expected


def test_monitor_shards_reads_the_heartbeats_in_redis(redis_db):
    live.write_heartbeat(redis_db, live.Shard(0, 1), {"synced": True, "owner": "host:1"})

    (shard,) = health.monitor_shards(client=redis_db)

    assert (shard.shard, shard.status, shard.beat["owner"]) == ("0of1", OK, "host:1")
