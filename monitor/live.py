"""Live values and heartbeats in Redis: the one module that knows the key schema and the encoding.

The monitor writes through :class:`FencedWriter` under a :class:`Lease`; web pages, snapshot jobs
and scripts read with :func:`read_values` and friends. Values are msgpack lists (no field names):
JSON costs 0.3-0.5 s for 50,000 values, more than Redis itself; a value's msgpack is
:func:`squirrel_site.epics_values.pack`, the one codec of a value in Redis. Monitor shards and Celery workers
write heartbeats that expire, which the health endpoint reads (:func:`read_heartbeats`,
:func:`read_worker_heartbeats`).

Keys:
    squirrel:live:values               hash, address -> packed Value
    squirrel:live:meta                 hash, address -> packed LiveMeta
    squirrel:live:changes:<db>         pub/sub channel, one packed list of addresses per flush
    squirrel:monitor:<shard>:lease     "<owner>:<token>", expires unless renewed
    squirrel:monitor:<shard>:fence     counter that issues the lease tokens
    squirrel:monitor:<shard>:heartbeat JSON stats, expires
    squirrel:monitor:shards            set of the shard labels that wrote a heartbeat
    squirrel:worker:<id>:heartbeat     JSON stats of one Celery worker process, expires
    squirrel:workers                   set of the ids of the workers that wrote a heartbeat
"""

from __future__ import annotations

import json
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import msgpack
import redis
import redis.asyncio
from django.conf import settings

from squirrel_site.epics_values import Value, pack, unpack

VALUES_KEY = "squirrel:live:values"
META_KEY = "squirrel:live:meta"
CHANGES_CHANNEL_PREFIX = "squirrel:live:changes"
MONITOR_KEY_PREFIX = "squirrel:monitor:"
WORKER_KEY_PREFIX = "squirrel:worker:"
# The labels of the shards and the ids of the workers that wrote a heartbeat: reading heartbeats
# needs no SCAN of a database that the Celery broker and the channel layer share.
SHARDS_KEY = f"{MONITOR_KEY_PREFIX}shards"
WORKERS_KEY = "squirrel:workers"

# Fields per Redis command: big enough to amortise round trips, small enough that one Lua call
# never blocks Redis for long (and stays far below Lua's unpack() limit of ~8000 arguments).
CHUNK_SIZE = 1000

_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()


REDIS_CONNECT_TIMEOUT = 5.0  # seconds


def redis_client() -> redis.Redis:
    """This process's client for settings.REDIS_URL (bytes in, bytes out; thread-safe pool)."""
    url = settings.REDIS_URL
    client = _clients.get(url)
    if client is None:
        with _clients_lock:
            # Connecting gives up after a few seconds, so an unreachable Redis host fails the health
            # probe instead of hanging it; reads have no timeout (the monitor's big pipelines).
            client = _clients.setdefault(
                url, redis.Redis.from_url(url, decode_responses=False, socket_connect_timeout=REDIS_CONNECT_TIMEOUT)
            )
    return client


def async_redis_client(**options) -> redis.asyncio.Redis:
    """A new asyncio client for settings.REDIS_URL (bytes in, bytes out).

    An asyncio client belongs to the event loop it first runs in, so each loop makes its own
    (monitor.streams makes one per hub) and closes it when done.
    """
    return redis.asyncio.Redis.from_url(settings.REDIS_URL, decode_responses=False, **options)


def changes_channel(client=None) -> str:
    """The pub/sub channel of change notices for the Redis database `client` uses.

    Redis pub/sub ignores database numbers, so the channel name carries it: two Squirrel
    instances (or the tests and a demo) on one Redis server must not hear each other.
    """
    db = (client or redis_client()).connection_pool.connection_kwargs.get("db", 0)
    return f"{CHANGES_CHANNEL_PREFIX}:{db}"


@dataclass(frozen=True)
class Shard:
    """One of `count` monitors' share of the addresses, chosen by a stable hash."""

    index: int
    count: int

    def __post_init__(self):
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index}/{self.count}: need 0 <= index < count")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """Parse "i/N", e.g. "0/1" (the whole registry) or "2/4"."""
        index, sep, count = text.strip().partition("/")
        try:
            if not sep:
                raise ValueError
            return cls(int(index), int(count))
        except ValueError:
            raise ValueError(f"invalid shard {text!r}: expected 'i/N' with integers 0 <= i < N, e.g. '0/1'") from None

    @classmethod
    def from_label(cls, label: str) -> Shard:
        """The shard of a label in key names, e.g. "2of4" (ValueError if it is not one)."""
        index, sep, count = label.partition("of")
        if not sep:
            raise ValueError(f"invalid shard label {label!r}: expected e.g. '0of1'")
        return cls(int(index), int(count))

    def owns(self, address: str) -> bool:
        """True if this shard monitors `address` (crc32, so every process agrees)."""
        return zlib.crc32(address.encode()) % self.count == self.index

    @property
    def label(self) -> str:
        """The shard in key names, e.g. "0of1"."""
        return f"{self.index}of{self.count}"


def lease_key(shard: Shard) -> str:
    return f"{MONITOR_KEY_PREFIX}{shard.label}:lease"


def fence_key(shard: Shard) -> str:
    return f"{MONITOR_KEY_PREFIX}{shard.label}:fence"


def heartbeat_key(shard: Shard) -> str:
    return _shard_heartbeat_key(shard.label)


def _shard_heartbeat_key(label: str) -> str:
    return f"{MONITOR_KEY_PREFIX}{label}:heartbeat"


def worker_heartbeat_key(worker_id: str) -> str:
    return f"{WORKER_KEY_PREFIX}{worker_id}:heartbeat"


@dataclass(slots=True)
class LiveMeta:
    """What a channel said about itself when it connected (pvs.epics_io.Metadata minus the address)."""

    units: str
    precision: int | None
    enum_labels: list[str] | None
    lower_limit: float | None
    upper_limit: float | None
    host: str
    kind: str
    count: int
    read_access: bool
    write_access: bool

    @classmethod
    def from_metadata(cls, metadata) -> LiveMeta:
        """From a pvs.epics_io.Metadata."""
        return cls(
            metadata.units,
            metadata.precision,
            metadata.enum_labels,
            metadata.lower_limit,
            metadata.upper_limit,
            metadata.host,
            metadata.kind,
            metadata.count,
            metadata.read_access,
            metadata.write_access,
        )


def encode_meta(m: LiveMeta) -> bytes:
    """Pack metadata as a msgpack list in field order."""
    return msgpack.packb(
        [
            m.units,
            m.precision,
            m.enum_labels,
            m.lower_limit,
            m.upper_limit,
            m.host,
            m.kind,
            m.count,
            m.read_access,
            m.write_access,
        ]
    )


def decode_meta(raw: bytes) -> LiveMeta:
    """Unpack what :func:`encode_meta` packed."""
    return LiveMeta(*msgpack.unpackb(raw))


def decode_changes(raw: bytes) -> list[str]:
    """The addresses in one change-notice message (see changes_channel)."""
    return msgpack.unpackb(raw)


T = TypeVar("T")


def _chunks(items: Sequence[T], size: int = CHUNK_SIZE) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _hmget_all(client, requests: Sequence[tuple[str, Sequence[str]]]) -> list[list[bytes | None]]:
    """HMGET every (key, fields) request in chunks, all in one pipeline round trip."""
    pipe = client.pipeline(transaction=False)
    for key, fields in requests:
        for chunk in _chunks(fields):
            pipe.hmget(key, chunk)
    replies = iter(pipe.execute())
    results = []
    for _, fields in requests:
        raws: list[bytes | None] = []
        for _chunk in _chunks(fields):
            raws.extend(next(replies))
        results.append(raws)
    return results


def _decoded(addresses: Sequence[str], raws, decode: Callable) -> dict:
    return {a: None if raw is None else decode(a, raw) for a, raw in zip(addresses, raws, strict=True)}


def _decode_meta_at(_address: str, raw: bytes) -> LiveMeta:
    return decode_meta(raw)


def read_values(addresses: Sequence[str], client=None) -> dict[str, Value | None]:
    """The live value of each address, None where Redis has none."""
    addresses = list(addresses)
    (raws,) = _hmget_all(client or redis_client(), [(VALUES_KEY, addresses)])
    return _decoded(addresses, raws, unpack)


def cached_addresses(client=None) -> set[str]:
    """Every address with a live value or metadata in Redis (HSCAN: never one long command)."""
    client = client or redis_client()
    return {
        field.decode()
        for key in (VALUES_KEY, META_KEY)
        for field, _ in client.hscan_iter(key, count=CHUNK_SIZE)  # NOVALUES needs Redis 7.4
    }


def read_metadata(addresses: Sequence[str], client=None) -> dict[str, LiveMeta | None]:
    """The metadata of each address, None where Redis has none."""
    addresses = list(addresses)
    (raws,) = _hmget_all(client or redis_client(), [(META_KEY, addresses)])
    return _decoded(addresses, raws, _decode_meta_at)


def read_values_and_metadata(
    addresses: Sequence[str], client=None, *, extra_values: Sequence[str] = ()
) -> tuple[dict[str, Value | None], dict[str, LiveMeta | None], dict[str, Value | None]]:
    """Values and metadata of `addresses`, plus values only of `extra_values` (readbacks), in one
    round trip: (values, metadata, extra values)."""
    addresses, extra_values = list(addresses), list(extra_values)
    values, metas, extras = _hmget_all(
        client or redis_client(), [(VALUES_KEY, addresses), (META_KEY, addresses), (VALUES_KEY, extra_values)]
    )
    return (
        _decoded(addresses, values, unpack),
        _decoded(addresses, metas, _decode_meta_at),
        _decoded(extra_values, extras, unpack),
    )


def read_all_values(client=None) -> dict[str, Value]:
    """Every live value in Redis, by address."""
    values = {}
    for field, packed in (client or redis_client()).hgetall(VALUES_KEY).items():
        address = field.decode()
        values[address] = unpack(address, packed)
    return values


# Lease scripts. A lease's value is "<owner>:<token>"; comparing the whole value (not just the
# owner) means a restarted process with the same owner name cannot renew its predecessor's lease.
_ACQUIRE = """
if redis.call('exists', KEYS[1]) == 1 then return false end
local token = redis.call('incr', KEYS[2])
redis.call('set', KEYS[1], ARGV[1] .. ':' .. token, 'PX', ARGV[2])
return token
"""
_RENEW = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('pexpire', KEYS[1], ARGV[2])
"""
_RELEASE = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('del', KEYS[1])
"""
# KEYS: lease, values hash, meta hash. ARGV: lease value, #value pairs, #meta pairs, value
# field/value pairs, meta field/value pairs, deleted fields (removed from both hashes).
_FENCED_WRITE = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
local nv, nm = tonumber(ARGV[2]), tonumber(ARGV[3])
local i = 4
if nv > 0 then redis.call('hset', KEYS[2], unpack(ARGV, i, i + 2 * nv - 1)) end
i = i + 2 * nv
if nm > 0 then redis.call('hset', KEYS[3], unpack(ARGV, i, i + 2 * nm - 1)) end
i = i + 2 * nm
if i <= #ARGV then
  redis.call('hdel', KEYS[2], unpack(ARGV, i, #ARGV))
  redis.call('hdel', KEYS[3], unpack(ARGV, i, #ARGV))
end
return 1
"""


class Lease:
    """The leader lease for one shard: only its holder writes live values.

    Acquiring takes a fresh token from the shard's fence counter. Every write checks in Redis that
    the lease still holds this exact "<owner>:<token>", so a leader that was paused past its TTL
    (GC, swapped out, SIGSTOP) and lost the lease to a standby cannot overwrite the new leader.
    """

    def __init__(self, client, shard: Shard, owner: str, ttl: float = 5.0):
        self.client, self.shard, self.owner, self.ttl = client, shard, owner, ttl
        self.key, self.fence_key = lease_key(shard), fence_key(shard)
        self.token: int | None = None
        self.held = False
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    @property
    def ttl_ms(self) -> int:
        return max(1, int(self.ttl * 1000))

    @property
    def value(self) -> str | None:
        """What Redis holds under the lease key while this lease is ours."""
        return None if self.token is None else f"{self.owner}:{self.token}"

    def acquire(self) -> bool:
        """Take the lease if nobody holds it (renew it if we do); True if it is now ours."""
        if self.held:
            return self.renew()
        token = self._acquire(keys=[self.key, self.fence_key], args=[self.owner, self.ttl_ms])
        if token is None:
            return False
        self.token, self.held = int(token), True
        return True

    def renew(self) -> bool:
        """Extend the lease by its TTL if it is still ours; otherwise mark it lost."""
        if self.token is not None and self._renew(keys=[self.key], args=[self.value, self.ttl_ms]):
            self.held = True
        else:
            self.held = False
        return self.held

    def release(self) -> None:
        """Give the lease up now (if it is still ours) so a standby can take over at once."""
        if self.token is not None:
            self._release(keys=[self.key], args=[self.value])
        self.held = False


def _write_chunks(
    values: Mapping[str, Value], metadata: Mapping[str, LiveMeta], deleted: Sequence[str]
) -> Iterator[tuple[list, list, list]]:
    """Split a write into (value pairs, meta pairs, deletions) of at most CHUNK_SIZE fields each."""
    chunk: tuple[list, list, list] = ([], [], [])
    size = 0
    parts = (
        ((0, (a, pack(v))) for a, v in values.items()),
        ((1, (a, encode_meta(m))) for a, m in metadata.items()),
        ((2, (a,)) for a in deleted),
    )
    for part in parts:
        for slot, fields in part:
            chunk[slot].extend(fields)
            size += 1
            if size == CHUNK_SIZE:
                yield chunk
                chunk, size = ([], [], []), 0
    if size:
        yield chunk


class FencedWriter:
    """Writes live values and metadata only while its lease is held, checked inside Redis."""

    def __init__(self, client, lease: Lease):
        self.client, self.lease = client, lease
        self._write = client.register_script(_FENCED_WRITE)

    def write(
        self,
        values: Mapping[str, Value],
        metadata: Mapping[str, LiveMeta] | None = None,
        deleted: Iterable[str] = (),
    ) -> bool:
        """Store values and metadata and drop deleted addresses; False if the lease was not ours.

        Each chunk is checked and applied atomically; a rejected chunk writes nothing (an empty
        write has no chunk and returns True). All chunks
        go in one pipeline, so a lease lost mid-pipeline can leave earlier chunks applied; they
        were written while the lease was still held, which is what fencing promises.
        """
        lease_value = self.lease.value
        if lease_value is None:
            return False
        pipe = self.client.pipeline(transaction=False)
        for value_pairs, meta_pairs, removed in _write_chunks(values, metadata or {}, list(deleted)):
            args = [lease_value, len(value_pairs) // 2, len(meta_pairs) // 2]
            self._write(
                keys=[self.lease.key, VALUES_KEY, META_KEY],
                args=args + value_pairs + meta_pairs + removed,
                client=pipe,
            )
        return all(pipe.execute())

    def publish_changes(self, addresses: Sequence[str]) -> None:
        """Announce one flush's changed addresses in one message.

        Not fenced: a message is only a hint to re-read Redis, and Redis holds only fenced writes.
        """
        if addresses:
            self.client.publish(changes_channel(self.client), msgpack.packb(list(addresses)))


def _write_beat(client, members_key: str, member: str, key: str, payload: dict, ttl: float) -> None:
    """SET `key` to `payload` as JSON for `ttl` seconds and list `member` in the set `members_key`."""
    pipe = client.pipeline(transaction=False)
    pipe.set(key, json.dumps(payload), px=max(1, int(ttl * 1000)))
    pipe.sadd(members_key, member)
    pipe.execute()


def _read_beats(client, members_key: str, key_of: Callable[[str], str]) -> dict[str, dict]:
    """The live heartbeats of the members of `members_key`, by member in sorted order; members whose
    heartbeat expired are removed from the set."""
    members = sorted(member.decode() for member in client.smembers(members_key))
    if not members:
        return {}
    beats, expired = {}, []
    for member, raw in zip(members, client.mget([key_of(member) for member in members]), strict=True):
        if raw is None:
            expired.append(member)
        else:
            beats[member] = json.loads(raw)
    if expired:
        client.srem(members_key, *expired)
    return beats


def write_heartbeat(client, shard: Shard, stats: Mapping, ttl: float = 10.0) -> None:
    """Record that this shard's monitor is alive, with its stats; gone after `ttl` seconds."""
    payload = {**stats, "shard": shard.label, "written_at": time.time()}
    _write_beat(client, SHARDS_KEY, shard.label, heartbeat_key(shard), payload, ttl)


def read_heartbeats(client=None) -> list[dict]:
    """Every live shard's latest heartbeat, ordered by shard label; expired shards are forgotten."""
    beats = _read_beats(client or redis_client(), SHARDS_KEY, _shard_heartbeat_key)
    return [{**beat, "shard": label} for label, beat in beats.items()]


def write_worker_heartbeat(client, worker_id: str, stats: Mapping, ttl: float) -> None:
    """Record that Celery worker `worker_id` is alive, with its stats; gone after `ttl` seconds."""
    payload = {**stats, "id": worker_id, "written_at": time.time()}
    _write_beat(client, WORKERS_KEY, worker_id, worker_heartbeat_key(worker_id), payload, ttl)


def delete_worker_heartbeat(client, worker_id: str) -> None:
    """Forget worker `worker_id` at once (it is stopping), instead of when its heartbeat expires."""
    pipe = client.pipeline(transaction=False)
    pipe.delete(worker_heartbeat_key(worker_id))
    pipe.srem(WORKERS_KEY, worker_id)
    pipe.execute()


def read_worker_heartbeats(client=None) -> list[dict]:
    """Every live Celery worker's latest heartbeat, ordered by id; expired workers are forgotten."""
    beats = _read_beats(client or redis_client(), WORKERS_KEY, worker_heartbeat_key)
    return [{**beat, "id": worker_id} for worker_id, beat in beats.items()]
