"""Judging the monitor's shards from their heartbeats: pure functions, plus one read from Redis."""

import pytest

from monitor import health, live
from monitor.health import DEGRADED, MISSING, OK, STALE, judge_connections, judge_shards, overall_status

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
    [
        ([OK, OK], OK),
        ([OK, DEGRADED], DEGRADED),
        ([DEGRADED, STALE], STALE),
        ([STALE, MISSING, OK], MISSING),
        ([], MISSING),
    ],
)
def test_the_overall_status_is_the_worst_shards(states, expected):
    assert overall_status([health.ShardHealth(f"{i}of9", state) for i, state in enumerate(states)]) == expected


def test_monitor_shards_reads_the_heartbeats_in_redis(redis_db):
    live.write_heartbeat(redis_db, live.Shard(0, 1), {"synced": True, "owner": "host:1"})

    (shard,) = health.monitor_shards(client=redis_db)

    assert (shard.shard, shard.status, shard.beat["owner"]) == ("0of1", OK, "host:1")


def connections(status: str = OK, **beat) -> health.ShardHealth:
    return judge_connections(health.ShardHealth("0of1", status, {"shard": "0of1", **beat}), 0.9)


def test_a_shard_and_iocs_with_exactly_the_fraction_connected_stay_ok():
    shard = connections(addresses=100, connected=90, hosts={"ioc-a:5064": [54, 6], "ioc-b:5064": [36, 4]})

    assert (shard.status, shard.degraded_iocs) == (OK, ())


def test_a_shard_with_too_few_addresses_connected_is_degraded():
    assert connections(addresses=100, connected=89).status == DEGRADED


def test_an_ioc_with_too_few_addresses_connected_degrades_the_shard_and_is_listed():
    shard = connections(addresses=100, connected=95, hosts={"ioc-a:5064": [90, 0], "ioc-b:5064": [5, 5]})

    assert shard.status == DEGRADED
    assert shard.degraded_iocs == ({"host": "ioc-b:5064", "connected": 5, "disconnected": 5},)


def test_addresses_no_ioc_ever_answered_are_no_ioc_and_a_few_do_not_degrade_the_shard():
    # The demo: one PV whose address has no server, among thousands connected.
    shard = connections(
        addresses=8655, connected=8654, hosts={"127.0.0.1:5064": [8654, 0], "": [0, 1]}, never_connected=["OFF:X"]
    )

    assert (shard.status, shard.degraded_iocs) == (OK, ())
    assert (shard.never_connected, shard.never_connected_addresses) == (1, ("OFF:X",))


def test_nothing_connected_at_all_is_degraded_though_no_ioc_ever_answered():
    shard = connections(addresses=3461, connected=0, hosts={"": [0, 3461]})

    assert (shard.status, shard.degraded_iocs, shard.never_connected) == (DEGRADED, (), 3461)


def test_many_addresses_no_ioc_ever_answered_degrade_the_shard_by_its_fraction():
    shard = connections(addresses=100, connected=80, hosts={"ioc-a:5064": [80, 0], "": [0, 20]})

    assert (shard.status, shard.degraded_iocs, shard.never_connected) == (DEGRADED, (), 20)


def test_an_ioc_that_answered_and_went_away_degrades_the_shard_beside_never_connected_addresses():
    shard = connections(addresses=1000, connected=990, hosts={"ioc-a:5064": [990, 0], "ioc-b:5064": [0, 9], "": [0, 1]})

    assert shard.status == DEGRADED
    assert (shard.degraded_iocs, shard.never_connected) == (
        ({"host": "ioc-b:5064", "connected": 0, "disconnected": 9},),
        1,
    )


def test_a_stale_shard_stays_stale_with_its_disconnected_iocs_listed():
    shard = connections(STALE, addresses=10, connected=0, hosts={"ioc-a:5064": [0, 10]})

    assert (shard.status, len(shard.degraded_iocs)) == (STALE, 1)


def test_a_shard_monitoring_nothing_is_not_degraded():
    assert connections(addresses=0, connected=0, hosts={}).status == OK


def test_connections_do_not_change_the_freshness_that_snapshots_use():
    beats = [beat("0of1", addresses=100, connected=0, hosts={"ioc-a:5064": [0, 100]})]

    assert overall_status(judge_shards(beats, NOW)) == OK


def test_host_counts_this_version_did_not_write_are_skipped():
    shard = connections(addresses=10, connected=10, hosts={"ioc-a:5064": "10/0", "ioc-b:5064": [1, 2, 3]})

    assert (shard.status, shard.degraded_iocs) == (OK, ())
