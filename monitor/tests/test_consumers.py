"""/ws/live/ through the real ASGI app, with values written and announced the way the monitor does."""

import asyncio
import json
import subprocess
import sys
import time

import pytest
import redis
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator

from monitor import live, streams
from pvs import sim
from squirrel_site.asgi import application
from squirrel_site.testing import eventually
from squirrel_site.testing.values import make_meta, make_value
from squirrel_site.testing.websocket import ORIGIN, PATH, TIMEOUT, connect, subscribe


def run(scenario):
    return async_to_sync(scenario)()


def test_anonymous_sockets_are_refused(redis_db, transactional_db):
    async def scenario():
        communicator = WebsocketCommunicator(application, PATH, headers=ORIGIN)
        connected, _ = await communicator.connect()
        return connected

    assert run(scenario) is False


def test_a_user_without_a_role_is_refused(client, make_user, redis_db, transactional_db):
    client.force_login(make_user(None))
    cookie = [(b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]

    async def scenario():
        communicator = WebsocketCommunicator(application, PATH, headers=ORIGIN + cookie)
        connected, _ = await communicator.connect()
        return connected

    assert run(scenario) is False


def test_a_foreign_origin_is_refused(headers, redis_db):
    foreign = [(b"origin", b"http://evil.example.com")] + [h for h in headers if h[0] != b"origin"]

    async def scenario():
        communicator = WebsocketCommunicator(application, PATH, headers=foreign)
        connected, _ = await communicator.connect()
        return connected

    assert run(scenario) is False


def test_the_first_message_is_full_with_the_current_values(headers, announce):
    announce(
        {"T:CUR": 1.23456, "T:MODE": make_value("T:MODE", kind="enum", value=1)},
        {"T:CUR": make_meta(units="mA", precision=2), "T:MODE": make_meta(enum_labels=["Off", "On"])},
    )

    async def scenario():
        communicator = await connect(headers)
        first = await subscribe(communicator, ["T:CUR", "T:MODE", "T:UNKNOWN"])
        await communicator.disconnect()
        return first

    first = run(scenario)
    assert (first["type"], first["seq"]) == ("values", 1)
    assert first["values"]["T:CUR"] == {
        "value": 1.23456,
        "display": "1.23 mA",
        "severity": 0,
        "status": 0,
        "connected": True,
        "timestamp": 1_700_000_000.25,
    }
    assert (first["values"]["T:MODE"]["value"], first["values"]["T:MODE"]["display"]) == (1, "On")
    assert first["values"]["T:UNKNOWN"]["connected"] is False


def test_a_change_arrives_as_a_diff_of_only_the_changed_addresses(headers, announce):
    announce({"T:A": 1.0, "T:B": 2.0})

    async def scenario():
        communicator = await connect(headers)
        await subscribe(communicator, ["T:A", "T:B"])
        announce({"T:A": 1.5}, extra_addresses=["T:NOT-WATCHED"])
        diff = await communicator.receive_json_from(timeout=TIMEOUT)
        await communicator.disconnect()
        return diff

    diff = run(scenario)
    assert (diff["full"], diff["seq"], list(diff["values"])) == (False, 2, ["T:A"])
    assert diff["values"]["T:A"]["value"] == 1.5


def test_changes_are_coalesced_to_at_most_five_messages_a_second(headers, announce):
    announce({"T:A": 0.0})

    async def scenario():
        communicator = await connect(headers)
        await subscribe(communicator, ["T:A"])
        received, start = [], time.monotonic()
        for i in range(1, 101):  # 100 changes in ~1 s
            announce({"T:A": float(i)})
            await asyncio.sleep(0.01)
            while not await communicator.receive_nothing(timeout=0):
                message = await communicator.receive_json_from()
                received.append(message)
                await communicator.send_json_to({"ack": message["seq"]})
        window = time.monotonic() - start
        while received[-1]["values"]["T:A"]["value"] != 100.0:
            received.append(await communicator.receive_json_from(timeout=TIMEOUT))
            await communicator.send_json_to({"ack": received[-1]["seq"]})
        await communicator.disconnect()
        return received, window

    received, window = run(scenario)
    # The last message may be the one that carries the final value after the loop.
    assert len(received) - 1 <= streams.MAX_MESSAGES_PER_S * window + 1, (len(received), window)
    assert all(not m["full"] for m in received)
    assert [m["seq"] for m in received] == list(range(2, 2 + len(received)))


def test_metadata_that_changed_while_a_channel_was_disconnected_shows_when_it_comes_back(headers, announce):
    announce({"T:A": 1.0}, {"T:A": make_meta(units="mA", precision=1)})

    async def scenario():
        communicator = await connect(headers)
        await subscribe(communicator, ["T:A"])
        messages = []
        for values, metadata in [
            ({"T:A": 2.0}, None),  # the hub remembers the metadata from here on
            ({"T:A": make_value("T:A", value=2.0, connected=False)}, None),
            ({"T:A": 3.0}, {"T:A": make_meta(units="A", precision=3)}),  # reconnected, new units
        ]:
            announce(values, metadata)
            messages.append(await communicator.receive_json_from(timeout=TIMEOUT))
            await communicator.send_json_to({"ack": messages[-1]["seq"]})
        await communicator.disconnect()
        return [m["values"]["T:A"]["display"] for m in messages]

    assert run(scenario) == ["2.0 mA", "2.0 mA", "3.000 A"]


def test_an_oversize_subscription_is_refused_and_the_previous_one_kept(headers, announce):
    announce({"T:A": 1.0})

    async def scenario():
        communicator = await connect(headers)
        await subscribe(communicator, ["T:A"])
        too_many = [f"T:X{i}" for i in range(streams.MAX_SUBSCRIPTION + 1)]
        await communicator.send_json_to({"subscribe": too_many})
        error = await communicator.receive_json_from(timeout=TIMEOUT)
        announce({"T:A": 2.0})
        diff = await communicator.receive_json_from(timeout=TIMEOUT)
        await communicator.disconnect()
        return error, diff

    error, diff = run(scenario)
    assert error["type"] == "error" and str(streams.MAX_SUBSCRIPTION) in error["message"]
    assert diff["values"]["T:A"]["value"] == 2.0


def test_a_bad_message_gets_an_error_and_the_socket_stays_open(headers, announce):
    announce({"T:A": 1.0})

    async def scenario():
        communicator = await connect(headers)
        await communicator.send_to(text_data="hello")
        error = await communicator.receive_json_from(timeout=TIMEOUT)
        first = await subscribe(communicator, ["T:A"])
        await communicator.disconnect()
        return error, first

    error, first = run(scenario)
    assert error["type"] == "error"
    assert first["values"]["T:A"]["value"] == 1.0


def test_health_comes_every_second_once_asked_and_follows_the_monitors_heartbeat(headers, announce, redis_db):
    announce({"T:A": 1.0})

    async def scenario():
        communicator = await connect(headers)
        first = await subscribe(communicator, ["T:A"])
        nothing_unasked = await communicator.receive_nothing(timeout=1.5)
        await communicator.send_json_to({"health": True})
        missing = await communicator.receive_json_from(timeout=TIMEOUT)
        announce({"T:A": 2.0})  # values go on beside health messages (and within the writer's lease)
        later = [await communicator.receive_json_from(timeout=TIMEOUT) for _ in range(3)]
        live.write_heartbeat(redis_db, live.Shard(0, 1), {"synced": True})
        healths = [await communicator.receive_json_from(timeout=TIMEOUT) for _ in range(2)]
        live.write_heartbeat(redis_db, live.Shard(0, 1), {"synced": False})  # a new leader filling the cache
        syncing = await communicator.receive_json_from(timeout=TIMEOUT)
        old_beat = {"synced": True, "shard": "0of1", "written_at": time.time() - 6}
        redis_db.set(live.heartbeat_key(live.Shard(0, 1)), json.dumps(old_beat))
        stale = await communicator.receive_json_from(timeout=TIMEOUT)
        await communicator.disconnect()
        return first, nothing_unasked, missing, healths, syncing, stale, later

    first, nothing_unasked, missing, healths, syncing, stale, later = run(scenario)
    assert first["type"] == "values" and nothing_unasked
    assert missing == {"type": "health", "monitor": "missing", "heartbeat_age_s": None, "stale_after_s": 5.0}
    assert healths[-1]["monitor"] == "ok" and 0 <= healths[-1]["heartbeat_age_s"] <= 5
    assert syncing["monitor"] == "syncing"
    assert stale["monitor"] == "stale" and stale["heartbeat_age_s"] >= 6
    assert any(m["type"] == "values" and m["values"]["T:A"]["value"] == 2.0 for m in later)
    assert {m["type"] for m in later} == {"health", "values"}


def test_health_is_unknown_when_redis_cannot_be_read(headers, announce, monkeypatch):
    monkeypatch.setattr(streams.health, "monitor_shards", _unreachable)

    async def scenario():
        communicator = await connect(headers)
        await communicator.send_json_to({"health": True})
        message = await communicator.receive_json_from(timeout=TIMEOUT)
        await communicator.send_json_to({"health": 1})
        error = await communicator.receive_json_from(timeout=TIMEOUT)
        await communicator.disconnect()
        return message, error

    message, error = run(scenario)
    assert (message["monitor"], message["heartbeat_age_s"]) == ("unknown", None)
    assert error == {"type": "error", "message": '"health" takes true.'}


def _unreachable(*args, **kwargs):
    raise redis.ConnectionError("Connection refused")


def test_a_new_subscription_starts_with_a_full_message_of_the_new_set(headers, announce):
    announce({"T:A": 1.0, "T:B": 2.0})

    async def scenario():
        communicator = await connect(headers)
        await subscribe(communicator, ["T:A"])
        second = await subscribe(communicator, ["T:B"])
        announce({"T:A": 5.0, "T:B": 6.0})
        diff = await communicator.receive_json_from(timeout=TIMEOUT)
        await communicator.disconnect()
        return second, diff

    second, diff = run(scenario)
    assert list(second["values"]) == ["T:B"] and second["values"]["T:B"]["value"] == 2.0
    assert list(diff["values"]) == ["T:B"]


def test_a_client_that_stops_acking_gets_at_most_four_messages_then_a_full_resync(headers, announce):
    announce({"T:A": 0.0, "T:B": 0.0})

    async def scenario():
        communicator = await connect(headers)
        messages = [await subscribe(communicator, ["T:A", "T:B"], ack=False)]
        value = 0.0
        while len(messages) < streams.MAX_UNACKED:
            value += 1
            announce({"T:A": value})
            messages.append(await communicator.receive_json_from(timeout=TIMEOUT))
        for _ in range(10):  # the client still does not ack: nothing more may come
            value += 1
            announce({"T:A": value})
            await asyncio.sleep(0.05)
        silent = await communicator.receive_nothing(timeout=1.0)
        await communicator.send_json_to({"ack": messages[-2]["seq"]})  # not caught up yet
        still_silent = await communicator.receive_nothing(timeout=0.5)
        await communicator.send_json_to({"ack": messages[-1]["seq"]})
        resync = await communicator.receive_json_from(timeout=TIMEOUT)
        await communicator.disconnect()
        return messages, silent, still_silent, resync, value

    messages, silent, still_silent, resync, value = run(scenario)
    assert [m["seq"] for m in messages] == [1, 2, 3, 4]
    assert silent and still_silent
    assert (resync["seq"], resync["full"]) == (5, True)
    assert resync["values"]["T:A"]["value"] == value and set(resync["values"]) == {"T:A", "T:B"}


def test_a_client_four_messages_behind_gets_no_health_until_it_acks(headers, announce):
    announce({"T:A": 0.0})

    async def scenario():
        communicator = await connect(headers)
        messages = [await subscribe(communicator, ["T:A"], ack=False)]
        while len(messages) < streams.MAX_UNACKED:
            announce({"T:A": float(len(messages))})
            messages.append(await communicator.receive_json_from(timeout=TIMEOUT))
        await communicator.send_json_to({"health": True})
        silent = await communicator.receive_nothing(timeout=2.5)  # health comes every second otherwise
        await communicator.send_json_to({"ack": messages[-1]["seq"]})
        health = await communicator.receive_json_from(timeout=TIMEOUT)
        await communicator.disconnect()
        return silent, health

    silent, health = run(scenario)
    assert silent and health["type"] == "health"


def test_the_hub_stops_when_its_last_client_leaves(headers, announce):
    announce({"T:A": 1.0})

    async def scenario():
        communicator = await connect(headers)
        await subscribe(communicator, ["T:A"])
        hub = streams.hub_for_running_loop()
        running = hub.running
        await communicator.disconnect()
        return running, hub.running

    assert run(scenario) == (True, False)


def caput(address: str, value) -> None:
    """Write a PV from a separate Channel Access client process, as an operator's tool would."""
    script = "import epics, sys\nassert epics.caput(sys.argv[1], int(sys.argv[2]), wait=True, timeout=5) == 1"
    done = subprocess.run(
        [sys.executable, "-c", script, address, str(value)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.ioc
def test_a_put_on_the_ioc_reaches_the_socket_through_the_real_monitor(
    sim_ioc_addresses, monitor_process, headers, sim_ioc
):
    address = sim_ioc.of_kind(sim.INT)[0].setpoint
    monitor_process("--registry-interval", "0.5")

    def in_redis():
        value = live.read_values([address])[address]
        return value if value is not None and value.connected else None

    value = eventually(in_redis, 30, what="the monitor bringing the PV to Redis")
    target = int(value.value) + 7

    async def scenario():
        communicator = await connect(headers)
        first = await subscribe(communicator, [address])
        await asyncio.to_thread(caput, address, target)
        put_done = time.monotonic()
        while (message := await communicator.receive_json_from(timeout=TIMEOUT))["values"][address]["value"] != target:
            await communicator.send_json_to({"ack": message["seq"]})
        arrived = time.monotonic() - put_done
        await communicator.disconnect()
        return first, message, arrived

    first, message, arrived = run(scenario)
    assert first["values"][address]["value"] == target - 7
    assert message["values"][address]["display"].startswith(str(target)) and arrived < 2.0
