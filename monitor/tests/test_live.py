"""The live-value store: encoding, shards, lease and fencing, reads, pub/sub, heartbeats."""

import math
import time

import msgpack
import pytest

from monitor import live
from monitor.live import FencedWriter, Lease, LiveMeta, Shard
from pvs import epics_io
from squirrel_site import epics_values
from squirrel_site.epics_values import Value
from squirrel_site.testing.values import make_meta, make_value

SHARD = Shard(0, 1)


def leader(client, owner="A", ttl=5.0) -> tuple[Lease, FencedWriter]:
    lease = Lease(client, SHARD, owner, ttl=ttl)
    assert lease.acquire()
    return lease, FencedWriter(client, lease)


@pytest.mark.parametrize(
    "kind, value",
    [
        ("float", 3.25),
        ("float", -0.0),
        ("int", -42),
        ("enum", 2),
        ("string", "Open ✓"),
        ("string", ""),
        ("float_array", [0.5, -1.25, 1e300]),
        ("int_array", [1, -2, 3, 2**40]),
        ("float", None),
    ],
)
def test_encode_decode_round_trips_every_kind(kind, value):
    original = make_value(kind=kind, value=value)

    assert epics_values.unpack("SIM:A", epics_values.pack(original)) == original


def test_encode_decode_keeps_disconnected_and_never_processed():
    original = make_value(value=None, timestamp=0.0, connected=False, status=17, severity=3)

    assert epics_values.unpack("SIM:A", epics_values.pack(original)) == original


@pytest.mark.parametrize("special", [math.inf, -math.inf])
def test_encode_decode_keeps_infinities(special):
    decoded = epics_values.unpack("SIM:A", epics_values.pack(make_value(value=special)))

    assert decoded.value == special


def test_encode_decode_keeps_nan():
    decoded = epics_values.unpack("SIM:A", epics_values.pack(make_value(value=math.nan)))

    assert math.isnan(decoded.value)


def test_encoding_is_a_compact_list_without_the_address():
    packed = epics_values.pack(make_value())

    assert isinstance(msgpack.unpackb(packed), list)
    assert b"SIM:A" not in packed


def test_meta_round_trips_with_enum_labels():
    original = make_meta(kind="enum", units="", precision=None, enum_labels=["Off", "On"], lower_limit=None)

    assert live.decode_meta(live.encode_meta(original)) == original


def test_a_reading_is_a_connected_value():
    # What Channel Access delivers is the value the monitor stores: one type, connected.
    reading = Value("SIM:A", "int", 7, 1, 2, 100.0, 101.0)

    assert reading == Value("SIM:A", "int", 7, 1, 2, 100.0, 101.0, True)


def test_from_metadata_copies_every_field_but_the_address():
    metadata = epics_io.Metadata(
        "SIM:A",
        "enum",
        1,
        units="",
        precision=None,
        enum_labels=["Off", "On"],
        host="ioc:5064",
        read_access=True,
        write_access=False,
    )

    assert LiveMeta.from_metadata(metadata) == make_meta(
        units="",
        precision=None,
        enum_labels=["Off", "On"],
        lower_limit=None,
        upper_limit=None,
        host="ioc:5064",
        kind="enum",
        write_access=False,
    )


def test_shard_parse_reads_index_and_count():
    shard = Shard.parse(" 2/4 ")

    assert (shard.index, shard.count, shard.label) == (2, 4, "2of4")


@pytest.mark.parametrize("text", ["", "1", "a/b", "1/", "/2", "2/2", "-1/2", "0/0", "1/2/3", "1.0/2"])
def test_shard_parse_rejects_invalid_text(text):
    with pytest.raises(ValueError, match="expected 'i/N'"):
        Shard.parse(text)


def test_two_shards_cover_every_address_exactly_once():
    addresses = [f"SIM:PV{i}:SET" for i in range(2000)]
    shards = [Shard(0, 2), Shard(1, 2)]

    owners = [[shard for shard in shards if shard.owns(a)] for a in addresses]

    assert all(len(o) == 1 for o in owners)
    assert 800 < sum(o[0].index == 0 for o in owners) < 1200


def test_lease_acquire_sets_owner_and_token_with_ttl(redis_db):
    lease = Lease(redis_db, SHARD, "host-a", ttl=5.0)

    assert lease.acquire()
    assert lease.held and lease.token == 1
    assert redis_db.get(live.lease_key(SHARD)) == b"host-a:1"
    assert 0 < redis_db.pttl(live.lease_key(SHARD)) <= 5000


def test_lease_cannot_be_acquired_while_another_holds_it(redis_db):
    leader(redis_db, "A")
    b = Lease(redis_db, SHARD, "B")

    assert not b.acquire()
    assert not b.held and b.token is None


def test_lease_is_acquired_at_once_after_release(redis_db):
    a, _ = leader(redis_db, "A")
    a.release()
    b = Lease(redis_db, SHARD, "B")

    assert not a.held
    assert b.acquire()
    assert b.token == 2


def test_lease_tokens_increase_with_each_holder(redis_db):
    a, _ = leader(redis_db, "A")
    a.release()
    b, _ = leader(redis_db, "B")

    assert b.token > a.token


def test_lease_renew_extends_the_ttl(redis_db):
    lease, _ = leader(redis_db, ttl=5.0)
    redis_db.pexpire(live.lease_key(SHARD), 100)

    assert lease.renew()
    assert redis_db.pttl(live.lease_key(SHARD)) > 4000


def test_lease_expires_without_renewal(redis_db):
    a, _ = leader(redis_db, "A", ttl=0.05)
    time.sleep(0.15)
    b = Lease(redis_db, SHARD, "B")

    assert b.acquire()
    assert not a.renew()
    assert not a.held


def test_release_does_not_delete_a_successors_lease(redis_db):
    a, _ = leader(redis_db, "A")
    redis_db.delete(live.lease_key(SHARD))
    leader(redis_db, "B")

    a.release()

    assert redis_db.get(live.lease_key(SHARD)) == b"B:2"


def test_shards_have_independent_leases(redis_db):
    leader(redis_db, "A")
    other = Lease(redis_db, Shard(1, 2), "B")

    assert other.acquire()


def test_write_stores_values_and_metadata(redis_db):
    _, writer = leader(redis_db)
    value, meta = make_value(), make_meta()

    assert writer.write({"SIM:A": value}, {"SIM:A": meta})
    assert live.read_values(["SIM:A"], redis_db) == {"SIM:A": value}
    assert live.read_metadata(["SIM:A"], redis_db) == {"SIM:A": meta}


def test_write_in_many_chunks_stores_everything(redis_db):
    _, writer = leader(redis_db)
    values = {f"SIM:PV{i}": make_value(f"SIM:PV{i}", value=float(i)) for i in range(2500)}
    metas = {f"SIM:PV{i}": make_meta() for i in range(1500)}

    assert writer.write(values, metas)
    assert live.read_all_values(redis_db) == values
    assert redis_db.hlen(live.META_KEY) == 1500


def test_paused_leader_write_is_rejected_after_takeover(redis_db):
    a, writer_a = leader(redis_db, "A")
    redis_db.delete(live.lease_key(SHARD))  # A's lease expired while A was paused
    b, writer_b = leader(redis_db, "B")
    b_value = make_value(value=2.0)
    assert writer_b.write({"SIM:A": b_value}, {"SIM:A": make_meta(units="B")})

    rejected = writer_a.write(
        {"SIM:A": make_value(value=1.0), "SIM:X": make_value("SIM:X")},
        {"SIM:A": make_meta(units="A")},
        deleted=["SIM:A"],
    )

    assert rejected is False
    assert live.read_all_values(redis_db) == {"SIM:A": b_value}
    assert live.read_metadata(["SIM:A"], redis_db)["SIM:A"].units == "B"
    assert not a.renew()


def test_write_is_rejected_when_the_lease_expired_and_nobody_took_over(redis_db):
    _, writer = leader(redis_db)
    redis_db.delete(live.lease_key(SHARD))

    assert writer.write({"SIM:A": make_value()}) is False
    assert redis_db.exists(live.VALUES_KEY) == 0


def test_write_without_a_lease_is_rejected(redis_db):
    writer = FencedWriter(redis_db, Lease(redis_db, SHARD, "never-acquired"))

    assert writer.write({"SIM:A": make_value()}) is False
    assert redis_db.exists(live.VALUES_KEY) == 0


def test_write_deletes_addresses_from_values_and_metadata(redis_db):
    _, writer = leader(redis_db)
    writer.write({"SIM:A": make_value(), "SIM:B": make_value("SIM:B")}, {"SIM:A": make_meta()})

    assert writer.write({}, deleted=["SIM:A"])
    assert list(live.read_all_values(redis_db)) == ["SIM:B"]
    assert redis_db.hlen(live.META_KEY) == 0


def test_read_values_gives_none_for_unknown_addresses(redis_db):
    _, writer = leader(redis_db)
    writer.write({"SIM:A": make_value()})

    values = live.read_values(["SIM:A", "SIM:UNKNOWN"], redis_db)

    assert values == {"SIM:A": make_value(), "SIM:UNKNOWN": None}


def test_read_values_across_chunks_keeps_every_address(redis_db):
    _, writer = leader(redis_db)
    writer.write({f"SIM:PV{i}": make_value(f"SIM:PV{i}") for i in range(0, 2500, 2)})

    values = live.read_values([f"SIM:PV{i}" for i in range(2500)], redis_db)

    assert len(values) == 2500
    assert all((values[f"SIM:PV{i}"] is None) == bool(i % 2) for i in range(2500))


def test_read_values_and_metadata_reads_both_hashes(redis_db):
    _, writer = leader(redis_db)
    writer.write({"SIM:A": make_value()}, {"SIM:A": make_meta()})

    values, metas, _ = live.read_values_and_metadata(["SIM:A", "SIM:B"], redis_db)

    assert values == {"SIM:A": make_value(), "SIM:B": None}
    assert metas == {"SIM:A": make_meta(), "SIM:B": None}


def test_redis_client_is_cached_per_process():
    assert live.redis_client() is live.redis_client()


def test_publish_changes_sends_one_message_with_every_address(redis_db):
    _, writer = leader(redis_db)
    pubsub = redis_db.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(live.changes_channel(redis_db))
    pubsub.get_message(timeout=1.0)  # the subscription confirmation

    writer.publish_changes(["SIM:A", "SIM:B"])

    message = pubsub.get_message(timeout=2.0)
    assert live.decode_changes(message["data"]) == ["SIM:A", "SIM:B"]
    assert pubsub.get_message(timeout=0.2) is None
    pubsub.close()


def test_publish_changes_with_no_addresses_sends_nothing(redis_db):
    _, writer = leader(redis_db)
    pubsub = redis_db.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(live.changes_channel(redis_db))
    pubsub.get_message(timeout=1.0)

    writer.publish_changes([])

    assert pubsub.get_message(timeout=0.3) is None
    pubsub.close()


def test_heartbeats_read_back_with_shard_label_and_ttl(redis_db):
    live.write_heartbeat(redis_db, Shard(1, 2), {"values": 10, "updates_per_s": 2.5}, ttl=10.0)
    live.write_heartbeat(redis_db, Shard(0, 2), {"values": 20}, ttl=10.0)

    beats = live.read_heartbeats(redis_db)

    assert [(b["shard"], b["values"]) for b in beats] == [("0of2", 20), ("1of2", 10)]
    assert beats[1]["updates_per_s"] == 2.5
    assert beats[0]["written_at"] == pytest.approx(time.time(), abs=5)
    assert 0 < redis_db.pttl(live.heartbeat_key(Shard(0, 2))) <= 10_000


def test_heartbeat_expires_after_its_ttl(redis_db):
    live.write_heartbeat(redis_db, SHARD, {}, ttl=0.05)
    time.sleep(0.15)

    assert live.read_heartbeats(redis_db) == []
    assert redis_db.smembers(live.SHARDS_KEY) == set()  # an expired shard is forgotten


def test_heartbeats_are_found_without_scanning_the_database(redis_db, monkeypatch):
    live.write_heartbeat(redis_db, SHARD, {"values": 1})
    monkeypatch.setattr(type(redis_db), "scan_iter", lambda *a, **k: pytest.fail("SCAN used"))
    assert [b["values"] for b in live.read_heartbeats(redis_db)] == [1]


def test_extra_values_come_in_the_same_round_trip(redis_db):
    lease = live.Lease(redis_db, live.Shard(0, 1), "t")
    assert lease.acquire()
    live.FencedWriter(redis_db, lease).write(
        {
            "SIM:SP": Value("SIM:SP", "float", 1.0, 0, 0, 1.0, 1.0, True),
            "SIM:RB": Value("SIM:RB", "float", 2.0, 0, 0, 1.0, 1.0, True),
        }
    )
    values, metas, extras = live.read_values_and_metadata(["SIM:SP"], redis_db, extra_values=["SIM:RB", "SIM:NONE"])
    assert (values["SIM:SP"].value, metas["SIM:SP"], extras["SIM:RB"].value, extras["SIM:NONE"]) == (
        1.0,
        None,
        2.0,
        None,
    )


def test_change_notices_of_two_redis_databases_do_not_mix():
    import redis

    first = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    second = redis.Redis.from_url("redis://127.0.0.1:6379/15")
    assert live.changes_channel(first) == "squirrel:live:changes:0"
    assert live.changes_channel(second) == "squirrel:live:changes:15"


def test_shard_from_label_reads_back_the_label():
    assert live.Shard.from_label(Shard(2, 4).label) == Shard(2, 4)


@pytest.mark.parametrize("label", ["", "0", "xof1", "1of1", "0of0"])
def test_shard_from_label_refuses_what_is_not_a_label(label):
    with pytest.raises(ValueError):
        live.Shard.from_label(label)


def test_worker_heartbeats_read_back_by_id_with_their_ttl(redis_db):
    live.write_worker_heartbeat(redis_db, "celery@b/2", {"active": 1}, ttl=10.0)
    live.write_worker_heartbeat(redis_db, "celery@a/1", {"active": 0}, ttl=10.0)

    beats = live.read_worker_heartbeats(redis_db)

    assert [(b["id"], b["active"]) for b in beats] == [("celery@a/1", 0), ("celery@b/2", 1)]
    assert beats[0]["written_at"] == pytest.approx(time.time(), abs=5)
    assert 0 < redis_db.pttl(live.worker_heartbeat_key("celery@a/1")) <= 10_000


def test_an_expired_worker_heartbeat_is_forgotten(redis_db):
    live.write_worker_heartbeat(redis_db, "celery@a/1", {}, ttl=0.05)
    time.sleep(0.15)

    assert live.read_worker_heartbeats(redis_db) == []
    assert redis_db.smembers(live.WORKERS_KEY) == set()


def test_a_deleted_worker_heartbeat_is_gone_at_once(redis_db):
    live.write_worker_heartbeat(redis_db, "celery@a/1", {}, ttl=10.0)

    live.delete_worker_heartbeat(redis_db, "celery@a/1")

    assert live.read_worker_heartbeats(redis_db) == []
    assert redis_db.smembers(live.WORKERS_KEY) == set()
