"""Live values for WebSocket clients: one hub per web process, one coalescing stream per client.

The monitor publishes, after each flush, the addresses it changed on one Redis pub/sub channel
(monitor.live.changes_channel). Each web process runs one :class:`LiveHub` per event loop (daphne
has one) that listens to that channel and keeps address -> local streams. For each notice it reads
the changed addresses that someone here watches, once, in one pipelined HMGET, encodes each entry
once, and hands the texts to the streams that want them. There is no channel-layer group_send per
update (channels-redis drops group messages past its capacity), and N web instances work because
each listens to Redis itself.

A :class:`LiveStream` is one client's subscription: the current values first, then coalesced diffs
(only changed addresses), at most MAX_MESSAGES_PER_S messages a second, at most MAX_UNACKED of them
unacknowledged. A client that falls behind gets nothing more; the stream forgets its pending
changes and only remembers that it is behind, and once the client has acknowledged everything it
sends a full resync read from Redis. A stream's memory is bounded by its subscription (at most
MAX_SUBSCRIPTION addresses) and references to at most MAX_BATCHES of the hub's shared reads,
whatever the client does.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable

import redis
from django.conf import settings

from monitor import health, live
from monitor.live import LiveMeta
from monitor.payloads import health_message, value_entry, values_message

log = logging.getLogger(__name__)

MAX_SUBSCRIPTION = 2000
MAX_MESSAGES_PER_S = 5
MAX_UNACKED = 4
MAX_BATCHES = 8  # hub reads a stream holds before merging them (only while rate-limited)
MIN_INTERVAL = 1 / MAX_MESSAGES_PER_S
RECONNECT_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)  # then 5 s until Redis is back
RETRY_DELAY = 1.0  # after a failed read, before a stream tries again
META_TTL = 10.0  # a watched address's metadata is re-read at least this often (see LiveHub)
PING_INTERVAL = 15.0  # an idle pub/sub connection is pinged, so a dead one is noticed
HUB_CLIENT_NAME = "squirrel-live-hub"
HEALTH_INTERVAL = 1.0  # the monitor's health is read and sent to the clients that asked this often
SYNCING = "syncing"  # health messages: every heartbeat fresh, some shard not synced yet
STOP_RETRY = 0.5  # a stopped hub's task still running this long after its cancellation is cancelled again
STOP_ATTEMPTS = 20

Sender = Callable[[str], Awaitable[None]]


class LiveHub:
    """This event loop's listener of the monitor's change notices, shared by every local stream.

    Started by the first stream that subscribes, stopped when the last one leaves. It reconnects to
    Redis by itself; notices published while it was away are lost, so after every (re)subscription
    but the first it makes every stream resync from Redis.

    Metadata (units, precision, enum labels) changes only when a channel (re)connects, so the hub
    keeps that of connected watched addresses for up to META_TTL and reads only values for a
    notice: metadata was half the cost of a read. Full reads (a new subscription, a resync) and
    addresses that were disconnected read it afresh.

    Every HEALTH_INTERVAL it reads the monitor's heartbeats once and hands the same health message
    to the streams that asked for it (pages show a banner and age their cells from it).

    Stopping cancels its tasks; the stream that left last awaits their end (wait_stopped), so its
    Redis connections are closed before the socket's disconnect returns and before the event loop
    shuts down. A cancellation can be lost: Python 3.11's asyncio.wait_for, which redis-py wraps
    around every socket write (socket_timeout is set by default), returns the write's result and
    drops a cancellation that arrives in the same loop step as the write completes (CPython
    gh-86296). A listener stopped while it subscribed then went on listening for ever: it held its
    pub/sub connection and hung the loop's shutdown. So the listener checks at every step whether it
    was asked to stop, and wait_stopped cancels again a task that is still running.
    """

    def __init__(self):
        self._index: dict[str, set[LiveStream]] = {}
        self._streams: set[LiveStream] = set()
        self._changed: set[str] = set()
        self._has_changes = asyncio.Event()
        self._subscribed = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._stopping: set[asyncio.Task] = set()  # cancelled, maybe not ended yet
        self._metas: dict[str, tuple[float, LiveMeta | None]] = {}  # address -> (read at, metadata)
        self._health_streams: set[LiveStream] = set()
        self.last_health: str | None = None  # the latest health message, for streams that ask now
        # Numbers the value reads made for notices, so a stream can ignore reads that were already
        # under way when it started a full read (their values may be older than the full read's).
        self.reads_started = 0

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    def watch(self, stream: LiveStream, addresses: frozenset[str], previous: frozenset[str]) -> None:
        """Deliver changes of `addresses` (instead of `previous`) to `stream`; start if stopped."""
        for address in previous - addresses:
            self._unindex(address, stream)
        for address in addresses - previous:
            self._index.setdefault(address, set()).add(stream)
        self._streams.add(stream)
        if not self.running:
            self._start()

    def watch_health(self, stream: LiveStream) -> None:
        """Deliver health messages to `stream` (the latest one at once); start if stopped."""
        self._health_streams.add(stream)
        self._streams.add(stream)
        if not self.running:
            self._start()
        elif self.last_health is not None:
            stream.offer_health(self.last_health)

    def forget(self, stream: LiveStream) -> None:
        """Stop delivering to `stream`; the last stream to leave stops the hub."""
        for address in stream.addresses:
            self._unindex(address, stream)
        self._streams.discard(stream)
        self._health_streams.discard(stream)
        if not self._streams:
            self._stop()

    async def wait_stopped(self) -> None:
        """Until every task of this hub that was stopped has ended (its Redis connections closed).

        A task still running STOP_RETRY after its cancellation is cancelled again (a cancellation
        can be lost, see the class); one that outlives STOP_ATTEMPTS cancellations is logged.
        """
        attempts = 0
        while self._stopping:
            done, pending = await asyncio.wait(set(self._stopping), timeout=STOP_RETRY)
            self._stopping.difference_update(done)
            attempts += 1
            if pending and attempts >= STOP_ATTEMPTS:
                log.error(
                    "Live hub: %s still running after %d cancellations", sorted(t.get_name() for t in pending), attempts
                )
                self._stopping.difference_update(pending)
                return
            for task in pending:
                task.cancel()

    async def wait_subscribed(self) -> None:
        """Until the hub hears every notice published from now on (reads after this miss none)."""
        await self._subscribed.wait()

    async def read_entries(self, addresses: Iterable[str], fresh_metadata: bool = True) -> dict[str, str]:
        """The encoded entries (payloads.value_entry) of `addresses`, read from Redis now.

        With `fresh_metadata` False, metadata the hub read less than META_TTL ago is reused.
        """
        now = time.monotonic()
        known: dict[str, LiveMeta | None] = {}
        if not fresh_metadata:
            metas = self._metas
            for address in addresses:
                remembered = metas.get(address)
                if remembered is not None and now - remembered[0] < META_TTL:
                    known[address] = remembered[1]
        entries, read, disconnected = await asyncio.to_thread(_read_entries, list(addresses), known)
        for address in disconnected:
            self._metas.pop(address, None)
        for address, meta in read.items():
            if address in self._index:
                self._metas[address] = (now, meta)
        return entries

    # Inside ----------------------------------------------------------------------------------

    def _unindex(self, address: str, stream: LiveStream) -> None:
        streams = self._index.get(address)
        if streams is not None:
            streams.discard(stream)
            if not streams:
                del self._index[address]
                self._metas.pop(address, None)

    def _start(self) -> None:
        client = live.async_redis_client(client_name=HUB_CLIENT_NAME)
        self._tasks = [
            asyncio.create_task(self._listen(client), name="live-hub-listen"),
            asyncio.create_task(self._dispatch(), name="live-hub-dispatch"),
            asyncio.create_task(self._watch_health(), name="live-hub-health"),
        ]

    def _stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._stopping.update(self._tasks)
        self._tasks = []
        self._subscribed.clear()
        self._has_changes.clear()
        self._changed.clear()
        self.last_health = None

    def _note(self, addresses: list[str]) -> None:
        index, changed = self._index, self._changed
        for address in addresses:
            if address in index:
                changed.add(address)
        if changed:
            self._has_changes.set()

    async def _listen(self, client: redis.asyncio.Redis) -> None:
        """Receive change notices, reconnecting after any Redis failure, until cancelled."""
        channel = live.changes_channel(client)
        subscriptions = 0
        failures = 0
        try:
            while True:
                _stop_if_cancelled()
                pubsub = client.pubsub()
                try:
                    await pubsub.subscribe(channel)
                    while True:
                        _stop_if_cancelled()  # a cancellation redis-py dropped (see the class)
                        message = await pubsub.get_message(timeout=PING_INTERVAL)
                        if message is None:
                            await pubsub.ping()
                        elif message["type"] == "message":
                            self._note(live.decode_changes(message["data"]))
                        elif message["type"] == "subscribe":
                            # redis-py may reconnect and resubscribe by itself: a second
                            # confirmation means notices may have been lost in between too.
                            subscriptions += 1
                            failures = 0
                            if subscriptions > 1:
                                log.warning("Live hub: resubscribed to %s; resyncing every client", channel)
                                self._resync_all()
                            self._subscribed.set()
                except (redis.RedisError, OSError) as exc:
                    self._subscribed.clear()
                    delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
                    failures += 1
                    log.warning("Live hub: Redis pub/sub failed (%s); reconnecting in %.1f s", exc, delay)
                    await asyncio.sleep(delay)
                finally:
                    await _quietly(pubsub.aclose())
        finally:
            await _quietly(client.aclose())

    async def _dispatch(self) -> None:
        """Read what changed (for local streams only) and hand each stream its entries."""
        while True:
            await self._has_changes.wait()
            self._has_changes.clear()
            addresses = [a for a in self._changed if a in self._index]
            self._changed.clear()
            if not addresses:
                continue
            self.reads_started += 1
            read = self.reads_started
            try:
                entries = await self.read_entries(addresses, fresh_metadata=False)
            except (redis.RedisError, OSError) as exc:
                log.warning("Live hub: could not read %d changed values (%s)", len(addresses), exc)
                for stream in {s for a in addresses for s in self._index.get(a, ())}:
                    stream.fall_behind()
                continue
            except Exception:  # a value we cannot encode must not stop every page's updates
                log.exception("Live hub: could not prepare %d changed values", len(addresses))
                continue
            touched: set[LiveStream] = set()
            index = self._index
            for address in entries:
                streams = index.get(address)
                if streams:
                    touched.update(streams)
            for stream in touched:
                stream.offer(entries, read)

    async def _watch_health(self) -> None:
        """Read the monitor's health every HEALTH_INTERVAL; send it to the streams that asked."""
        while True:
            if not self._health_streams:  # nobody asked (scripts, benchmarks): no reads
                self.last_health = None
                await asyncio.sleep(HEALTH_INTERVAL)
                continue
            try:
                message = await asyncio.to_thread(_health_message)
            except Exception:  # the pages' banner must keep its news coming
                log.exception("Live hub: could not judge the monitor's health")
                message = health_message("unknown", None, settings.LIVE_STALE_SECONDS)
            self.last_health = message
            for stream in self._health_streams:
                stream.offer_health(message)
            await asyncio.sleep(HEALTH_INTERVAL)

    def _resync_all(self) -> None:
        for stream in self._streams:
            stream.fall_behind()


class LiveStream:
    """One client's live values: full first, then coalesced diffs, rate-limited and acknowledged.

    `send` delivers one message's text; `on_error` is awaited if the stream fails unexpectedly (the
    consumer closes the socket, and the client reconnects).
    """

    def __init__(self, hub: LiveHub, send: Sender, on_error: Callable[[], Awaitable[None]] | None = None):
        self.hub, self._send, self._on_error = hub, send, on_error
        self.addresses: frozenset[str] = frozenset()
        self.seq = 0  # of the last message sent
        self.acked = 0  # the highest seq the client acknowledged
        # The hub's reads since the last message (shared dicts, address -> entry), oldest first.
        self._batches: list[dict[str, str]] = []
        self._need_full = False
        self._behind = False
        self._ignore_reads_up_to = 0
        self._last_sent = -math.inf
        self._health: str | None = None  # a health message to send (the latest only)
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    @property
    def unacked(self) -> int:
        return self.seq - self.acked

    def subscribe(self, addresses: Iterable[str]) -> None:
        """Replace the subscription; the next message is full. ValueError if there are too many."""
        addresses = frozenset(addresses)
        if len(addresses) > MAX_SUBSCRIPTION:
            raise ValueError(f"At most {MAX_SUBSCRIPTION} addresses per connection ({len(addresses)} asked).")
        self.hub.watch(self, addresses, self.addresses)
        self.addresses = addresses
        self._need_full = True
        self._batches.clear()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="live-stream")
        self._wake.set()

    def ack(self, seq: int) -> None:
        """The client applied every message up to `seq` (acks of unsent messages count as the last)."""
        if seq > self.acked:
            self.acked = min(seq, self.seq)
            self._wake.set()

    def offer(self, entries: dict[str, str], read: int) -> None:
        """The hub's `read`-th read (shared by every stream it concerns; some entries are ours)."""
        if read <= self._ignore_reads_up_to or self._need_full:
            return  # older than the full read under way, or a full read is due anyway
        if self.unacked >= MAX_UNACKED:
            self.fall_behind()
            return
        self._batches.append(entries)
        if len(self._batches) > MAX_BATCHES:
            self._batches = [self._changes()]
        self._wake.set()

    def watch_health(self) -> None:
        """Send health messages (HealthPayload) from now on."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="live-stream")
        self.hub.watch_health(self)

    def offer_health(self, message: str) -> None:
        """The hub's latest health message: sent next, ahead of values, without a seq or the rate
        limit (one a HEALTH_INTERVAL), but not to a client with MAX_UNACKED messages unacknowledged:
        one that stopped reading gets nothing more, and its page ages its values for lack of news."""
        self._health = message
        self._wake.set()

    def fall_behind(self) -> None:
        """Forget pending changes; send everything afresh once the client has caught up."""
        self._behind = self._need_full = True
        self._batches.clear()
        self._wake.set()

    async def close(self) -> None:
        """Stop sending and leave the hub."""
        if self._task is not None:
            self._task.cancel()
            await _quietly(self._task)
            self._task = None
        self.hub.forget(self)
        await self.hub.wait_stopped()

    # Inside ----------------------------------------------------------------------------------

    def _can_send(self) -> bool:
        if self._health is not None and self.unacked < MAX_UNACKED:
            return True
        if not (self._need_full or self._batches):
            return False
        if self._behind:
            return self.unacked == 0
        return self.unacked < MAX_UNACKED

    async def _run(self) -> None:
        try:
            while True:
                if not self._can_send():
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                if self._health is not None and self.unacked < MAX_UNACKED:
                    message, self._health = self._health, None
                    await self._send(message)
                    continue
                delay = self._last_sent + MIN_INTERVAL - asyncio.get_running_loop().time()
                if delay > 0:
                    await asyncio.sleep(delay)  # changes arriving meanwhile join this message
                    continue
                if self._need_full:
                    await self._send_full()
                    continue
                changes, self._batches = self._changes(), []
                if changes:
                    await self._send_values(False, changes.values())
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("Live stream failed; closing the connection")
            if self._on_error is not None:
                await self._on_error()

    async def _send_full(self) -> None:
        await self.hub.wait_subscribed()
        addresses = self.addresses
        self._ignore_reads_up_to = self.hub.reads_started
        self._need_full = self._behind = False
        self._batches.clear()
        try:
            entries = await self.hub.read_entries(addresses)
        except (redis.RedisError, OSError) as exc:
            log.warning("Live stream: could not read %d values (%s); retrying", len(addresses), exc)
            self._need_full = True
            await asyncio.sleep(RETRY_DELAY)
            return
        if addresses is not self.addresses or self._need_full:
            return  # resubscribed or fell behind meanwhile: another full read is due
        await self._send_values(True, entries.values())

    def _changes(self) -> dict[str, str]:
        """Our entries in the batches, the latest of each address (at most the subscription)."""
        changes: dict[str, str] = {}
        for entries in self._batches:
            ours = self.addresses if len(self.addresses) <= len(entries) else self.addresses.intersection(entries)
            changes.update({address: entries[address] for address in ours if address in entries})
        return changes

    async def _send_values(self, full: bool, entries: Iterable[str]) -> None:
        self.seq += 1
        self._last_sent = asyncio.get_running_loop().time()
        await self._send(values_message(self.seq, full, entries))


def _read_entries(
    addresses: list[str], known: dict[str, LiveMeta | None]
) -> tuple[dict[str, str], dict[str, LiveMeta | None], list[str]]:
    """(entries, metadata read for connected addresses, addresses without a connected value).

    Runs in a worker thread with the sync client: it packs commands with hiredis (redis.asyncio
    packs 1,000-field HMGETs in Python, several times slower), and the event loop goes on sending.
    """
    missing = [address for address in addresses if address not in known]
    if len(missing) == len(addresses):
        values, read, _ = live.read_values_and_metadata(addresses)
    else:
        values, read = live.read_values(addresses), live.read_metadata(missing) if missing else {}
    metas = {**known, **read}
    entries = {address: value_entry(address, value, metas[address]) for address, value in values.items()}
    disconnected = [address for address, value in values.items() if value is None or not value.connected]
    for address in disconnected:
        read.pop(address, None)  # its metadata may change when it connects again
    return entries, read, disconnected


def _health_message() -> str:
    """The monitor's health now (monitor.health, the heartbeats' judgement without the connection
    counts: a disconnected channel shows in its own cell), as a health message."""
    try:
        shards = health.monitor_shards()
    except (redis.RedisError, OSError):
        return health_message("unknown", None, settings.LIVE_STALE_SECONDS)
    ages = [shard.age for shard in shards if shard.age is not None]
    status = health.overall_status(shards)
    if status == health.STALE and all(
        shard.age is not None and shard.age <= health.MAX_HEARTBEAT_AGE for shard in shards
    ):
        # Alive, but not every address has its first value yet (a new leader, PVs just added):
        # the values it has are current; the new addresses show as loading.
        status = SYNCING
    return health_message(status, max(ages, default=None), settings.LIVE_STALE_SECONDS)


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LiveHub] = weakref.WeakKeyDictionary()


def hub_for_running_loop() -> LiveHub:
    """This event loop's hub (one per web process under daphne; tests may run several loops)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = LiveHub()
    return hub


def _stop_if_cancelled() -> None:
    """Raise CancelledError if this task was cancelled and some library swallowed it (a
    cancellation asyncio.timeout handled itself is uncancelled: it does not count)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def _quietly(awaitable) -> None:
    """Await a cleanup step; its failure (or cancellation of the task awaited) is not ours."""
    try:
        await awaitable
    except (asyncio.CancelledError, redis.RedisError, OSError):
        pass
