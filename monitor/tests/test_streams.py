"""The live hub: one per web process (event loop), each listening to Redis, surviving reconnects."""

import asyncio
import threading

from asgiref.sync import async_to_sync
from django.db import connections

from monitor import streams
from squirrel_site.epics_values import Value
from squirrel_site.testing import eventually
from squirrel_site.testing.websocket import TIMEOUT, connect, subscribe


def test_two_web_instances_each_deliver_a_change_published_once(headers, announce):
    """Two event loops stand for two web processes: each has its own hub, listening to Redis."""
    announce({"T:A": 1.0})
    ready = [threading.Event(), threading.Event()]
    results: list = [None, None]

    def web_instance(n):
        async def scenario():
            communicator = await connect(headers)
            await subscribe(communicator, ["T:A"])
            hub = streams.hub_for_running_loop()
            ready[n].set()
            diff = await communicator.receive_json_from(timeout=10)
            await communicator.disconnect()
            return id(hub), diff

        try:
            results[n] = async_to_sync(scenario)()
        finally:
            connections.close_all()  # this thread's session lookups opened its own connection

    threads = [threading.Thread(target=web_instance, args=(n,)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    assert all(event.wait(10) for event in ready)
    announce({"T:A": 2.0})
    for thread in threads:
        thread.join(15)

    (hub_a, diff_a), (hub_b, diff_b) = results
    assert hub_a != hub_b
    assert diff_a["values"]["T:A"]["value"] == diff_b["values"]["T:A"]["value"] == 2.0


def hub_pubsub_connections(client) -> list[int]:
    """Ids of the live hubs' pub/sub connections to this Redis database."""
    db = client.connection_pool.connection_kwargs.get("db", 0)
    return [
        c["id"]
        for c in client.client_list()
        if c["name"] == streams.HUB_CLIENT_NAME and int(c["db"]) == db and int(c["sub"]) > 0
    ]


def test_after_losing_its_redis_connection_the_hub_resyncs_every_client(headers, announce, writer, redis_db):
    announce({"T:A": 1.0})

    async def scenario():
        communicator = await connect(headers)
        await subscribe(communicator, ["T:A"])
        (connection_id,) = hub_pubsub_connections(redis_db)
        # A change whose notice the hub will never hear: only a resync can bring it.
        assert writer.write({"T:A": Value("T:A", "float", 7.0, 0, 0, 1.0, 1.0, True)})
        redis_db.client_kill_filter(_id=connection_id)
        resync = await communicator.receive_json_from(timeout=TIMEOUT)
        await communicator.send_json_to({"ack": resync["seq"]})
        announce({"T:A": 8.0})  # and it hears notices again
        diff = await communicator.receive_json_from(timeout=TIMEOUT)
        await communicator.disconnect()
        return resync, diff

    resync, diff = async_to_sync(scenario)()
    assert (resync["full"], resync["values"]["T:A"]["value"]) == (True, 7.0)
    assert (diff["full"], diff["values"]["T:A"]["value"]) == (False, 8.0)


def test_a_hub_stopped_while_it_subscribes_closes_its_connection_before_the_close_returns(redis_db):
    """The last client may leave at any moment, here while the hub connects and subscribes (where
    Python 3.11's wait_for, under redis-py's writes, can drop a cancellation): the hub stops, its
    pub/sub connection is closed and no task of it is left running to hang the loop's shutdown."""

    async def discard(text: str) -> None:
        pass

    async def scenario():
        hub = streams.LiveHub()
        for n in range(60):
            stream = streams.LiveStream(hub, discard)
            stream.subscribe(["T:A"])
            await asyncio.sleep(n % 12 * 0.0005)  # 0 to 5.5 ms: before, during and after SUBSCRIBE
            await stream.close()
            assert not hub.running
        eventually(lambda: not hub_pubsub_connections(redis_db), 3, what="the hubs' pub/sub connections closed")
        return [task.get_name() for task in asyncio.all_tasks() if task is not asyncio.current_task()]

    assert async_to_sync(scenario)() == []
