"""Live tables under load: WebSocket clients watching pages of PVs that change at 2 Hz.

    .venv/bin/python benchmarks/bench_live.py [--clients 50] [--page-size 500] [--pages 10]
                                               [--pvs 50000] [--duration 60] [--stalled 5]

Everything runs as separate processes on loopback, as in production: an IOC serving `--pvs`
records, of which `--pages` x `--page-size` are `calc` records scanned every 0.5 s (2 Hz, random
values) and the rest static `ao` records (bench_monitor.py's load IOC); the real monitor
(`manage.py monitor_pvs`) with the whole registry; one web process on 127.0.0.1, started as in
production (`python -m squirrel_site.web_server`: daphne); and, in this process, `--clients`
WebSocket clients (logged in as a viewer; each handshake sends a Host and a matching Origin),
client i watching page i mod `--pages` (its `--page-size` addresses), acknowledging every message
as live.js does. `--stalled` more clients
subscribe to a page and then never read their socket (a frozen browser tab).

Measured over `--duration` seconds after a warm-up:
- latency of every value in every diff a client receives: receive time minus the value's IOC
  timestamp (same clock: one machine), so it includes the monitor (CA -> Redis, 100 ms flushes),
  the hub (pub/sub, HMGET, encoding), the stream's coalescing (at most 5 messages/s) and daphne;
- the same latency from the moment the monitor's change notice was published (this process
  listens to the channel too): the web part alone (hub, stream, daphne, client);
- messages per client per second (at most 5), values delivered per second;
- daphne's RSS every second (bounded?), and the CPU of each process ("other": everything else on
  the machine, including other users' jobs: figures taken on a busy machine say so).
The stalled clients' sockets are read after the warm-up (each must hold exactly MAX_UNACKED
messages: nothing more was sent) and at the end (daphne drops a client that does not answer its
pings within its ping timeout).

`--profile FILE` runs daphne under cProfile (its figures then include the profiler's overhead).

Private resources, so it runs beside the tests and the other benchmarks: database
`squirrel_bench_live` (SQUIRREL_DB_NAME overrides; its registry is emptied), Redis DB 8
(SQUIRREL_BENCH_REDIS_URL overrides; FLUSHDB'd), CA ports 15980/15981 (`--port`).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import bisect
import json
import os
import re
import socket
import statistics
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path

import smoke
from bench_monitor import PYTHON, CpuMeter, load_db_text, rss_mb, spawn, stop, wait_for_file

BENCH_MONITOR = Path(__file__).resolve().parent / "bench_monitor.py"
PREFIX = "BENCHLIVE:R"
TARGET_P95_S = 0.25
HISTOGRAM_MS = 10_000  # latencies are counted per millisecond up to 10 s
SEQ = re.compile(r'\{"type":"values","seq":(\d+),')


class WebSocket:
    """Just enough of RFC 6455 for a benchmark client: text frames, ping/pong, close."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, host: str, port: int, path: str, cookie: str) -> WebSocket:
        reader, writer = await asyncio.open_connection(host, port, limit=2**24)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://{host}:{port}\r\n"
            f"Cookie: {cookie}\r\n\r\n".encode()
        )
        status = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n", 1)[0]
        if b" 101 " not in status:
            raise RuntimeError(f"handshake refused: {status.decode()}")
        return cls(reader, writer)

    async def receive(self) -> tuple[str, float]:
        """The next text message and the time its first frame arrived."""
        parts, arrived = [], None
        while True:
            head = await self.reader.readexactly(2)
            arrived = arrived or time.time()
            opcode, length = head[0] & 0x0F, head[1] & 0x7F
            if length == 126:
                (length,) = struct.unpack(">H", await self.reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack(">Q", await self.reader.readexactly(8))
            payload = await self.reader.readexactly(length)  # server frames are not masked
            if opcode == 0x9:
                self._send_frame(0xA, payload)
            elif opcode == 0x8:
                raise ConnectionError("closed by the server")
            elif opcode in (0x0, 0x1):
                parts.append(payload)
                if head[0] & 0x80:
                    return b"".join(parts).decode(), arrived

    def send_text(self, text: str) -> None:
        self._send_frame(0x1, text.encode())

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode]) + (
            bytes([0x80 | n])
            if n < 126
            else bytes([0x80 | 126]) + struct.pack(">H", n)
            if n < 65536
            else bytes([0x80 | 127]) + struct.pack(">Q", n)
        )
        masked = (int.from_bytes(payload, "big") ^ int.from_bytes((mask * (n // 4 + 1))[:n], "big")).to_bytes(n, "big")
        self.writer.write(head + mask + masked)

    def close(self) -> None:
        self.writer.close()


class NoticeListener(threading.Thread):
    """Records when each address's change notice was published (as the hubs hear it)."""

    def __init__(self, client, channel: str):
        super().__init__(daemon=True)
        self.pubsub = client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(channel)
        self.times: dict[str, list[float]] = {}
        self.done = threading.Event()

    def run(self):
        import msgpack

        while not self.done.is_set():
            message = self.pubsub.get_message(timeout=0.1)
            if message and message["type"] == "message":
                now = time.time()
                for address in msgpack.unpackb(message["data"]):
                    self.times.setdefault(address, []).append(now)

    def stop(self) -> dict[str, list[float]]:
        self.done.set()
        self.join()
        self.pubsub.close()
        return self.times


class Results:
    """What the clients saw: each message's text and arrival time, analysed after the window.

    Parsing waits until then: fifty clients share this one process, and parsing a message while
    the next ones queue up would add the benchmark's own delay to the latencies it measures.
    """

    def __init__(self, clients: int):
        self.messages: list[tuple[int, float, str]] = []
        self.measuring = False
        self.histogram = [0] * (HISTOGRAM_MS + 1)
        self.web_histogram = [0] * (HISTOGRAM_MS + 1)
        self.message_times: list[list[float]] = [[] for _ in range(clients)]
        self.values = self.full = 0

    def record(self, client: int, text: str, arrived: float) -> None:
        if self.measuring:
            self.messages.append((client, arrived, text))

    def analyse(self, notices: dict[str, list[float]]) -> None:
        """Latencies from the IOC timestamp, and (web part) from the monitor's change notice."""
        histogram, web = self.histogram, self.web_histogram
        for client, arrived, text in self.messages:
            message = json.loads(text)
            self.message_times[client].append(arrived)
            if message["full"]:
                self.full += 1
                continue
            for address, value in message["values"].items():
                self.values += 1
                if value["timestamp"]:
                    histogram[min(HISTOGRAM_MS, max(0, int((arrived - value["timestamp"]) * 1000)))] += 1
                times = notices.get(address, ())
                i = bisect.bisect_right(times, arrived)
                if i:  # the last notice of this address before the message arrived
                    web[min(HISTOGRAM_MS, int((arrived - times[i - 1]) * 1000))] += 1
        self.messages = []

    def percentile(self, q: float, web: bool = False) -> float:
        histogram = self.web_histogram if web else self.histogram
        rank, seen = q * sum(histogram), 0
        for ms, count in enumerate(histogram):
            seen += count
            if seen >= rank:
                return ms / 1000
        return HISTOGRAM_MS / 1000

    def max_per_second(self) -> int:
        """The most messages any client got within any 1 s window."""
        most = 0
        for times in self.message_times:
            start = 0
            for end, t in enumerate(times):
                while t - times[start] >= 1.0:
                    start += 1
                most = max(most, end - start + 1)
        return most


async def run_client(
    n: int, address: tuple[str, int], cookie: str, page: list[str], results: Results, finished: asyncio.Event
) -> None:
    """Watch one page as live.js does: acknowledge every message as soon as it is read."""
    ws = await WebSocket.connect(*address, "/ws/live/", cookie)
    ws.send_text(json.dumps({"subscribe": page}))
    try:
        while not finished.is_set():
            try:
                text, arrived = await asyncio.wait_for(ws.receive(), timeout=1.0)
            except TimeoutError:
                continue
            seq = SEQ.match(text)
            if seq is None:
                raise RuntimeError(f"client {n}: {text[:200]}")
            ws.send_text(f'{{"ack":{seq[1]}}}')
            results.record(n, text, arrived)
    finally:
        ws.close()


async def stalled_client(address, cookie, page) -> WebSocket:
    ws = await WebSocket.connect(*address, "/ws/live/", cookie)
    ws.send_text(json.dumps({"subscribe": page}))
    return ws


async def count_buffered(ws: WebSocket) -> int | str:
    """Messages waiting in a stalled client's socket (it never acknowledges any), or "dropped"."""
    count = 0
    try:
        while True:
            await asyncio.wait_for(ws.receive(), timeout=2.0)
            count += 1
    except TimeoutError:
        return count
    except (ConnectionError, asyncio.IncompleteReadError):
        return "dropped"


async def drive_clients(args, address, cookie, pages, daphne_pid, meter_pids, notices) -> dict:
    results = Results(args.clients)
    finished = asyncio.Event()
    stalled = [await stalled_client(address, cookie, pages[i % len(pages)]) for i in range(args.stalled)]
    tasks = []
    for n in range(args.clients):
        client = run_client(n, address, cookie, pages[n % len(pages)], results, finished)
        tasks.append(asyncio.create_task(client))
        await asyncio.sleep(0.02)
    await asyncio.sleep(args.warmup)
    stalled_early = await asyncio.gather(*(count_buffered(ws) for ws in stalled))
    results.measuring = True
    meter = CpuMeter(meter_pids).start()
    measure_start = time.time()
    rss = []
    while time.time() < measure_start + args.duration:
        rss.append((time.time() - measure_start, rss_mb(daphne_pid)))
        failed = [t for t in tasks if t.done() and t.exception()]
        if failed:
            raise RuntimeError(f"a client failed: {failed[0].exception()!r}")
        await asyncio.sleep(1.0)
    results.measuring = False
    window = time.time() - measure_start
    cpu = meter.stop()
    finished.set()
    await asyncio.gather(*tasks)
    results.analyse(notices.stop())
    stalled_late = await asyncio.gather(*(count_buffered(ws) for ws in stalled))
    for ws in stalled:
        ws.close()
    return {"results": results, "window": window, "rss": rss, "cpu": cpu, "stalled": (stalled_early, stalled_late)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"daphne exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("daphne did not listen in time")


def session_cookie() -> str:
    """A logged-in session of the benchmark user (a viewer: live values need a role), created in the
    benchmark's database."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.auth.models import Group
    from django.contrib.sessions.backends.db import SessionStore

    user, _ = get_user_model().objects.get_or_create(username="bench-live")
    user.groups.add(Group.objects.get(name="viewer"))
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return f"sessionid={session.session_key}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--page-size", type=int, default=500, help="addresses each client watches (default 500)")
    parser.add_argument("--pages", type=int, default=10, help="distinct pages the clients are spread over (default 10)")
    parser.add_argument("--pvs", type=int, default=50_000, help="registry PVs in all (default 50000)")
    parser.add_argument("--duration", type=float, default=60.0, help="measurement window, s (default 60)")
    parser.add_argument("--warmup", type=float, default=8.0, help="seconds after connecting before measuring")
    parser.add_argument("--stalled", type=int, default=5, help="extra clients that never read (default 5)")
    parser.add_argument("--port", type=int, default=15980, help="CA server port; the repeater gets port+1")
    parser.add_argument("--profile", type=Path, help="run daphne under cProfile, writing its stats to this file")
    args = smoke.parse_args(parser, clients=3, page_size=20, pages=2, pvs=300, duration=2.0, warmup=1.0, stalled=1)
    changing = args.pages * args.page_size
    if changing > args.pvs:
        parser.error("--pages x --page-size exceeds --pvs")

    os.environ.setdefault("SQUIRREL_DB_NAME", "squirrel_bench_live")
    os.environ["SQUIRREL_REDIS_URL"] = os.environ.get("SQUIRREL_BENCH_REDIS_URL", "redis://127.0.0.1:6379/8")
    from bench_import import create_database, empty_registry  # sets up Django (and EPICS loopback defaults)
    from django.conf import settings

    from monitor import live
    from pvs.importers import import_pvs

    create_database()
    tmp = Path(tempfile.mkdtemp(prefix="squirrel-bench-live-"))
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "DJANGO_SETTINGS_MODULE": "squirrel_site.settings",
        "SQUIRREL_DB_NAME": settings.DATABASES["default"]["NAME"],
        "SQUIRREL_REDIS_URL": settings.REDIS_URL,
        "SQUIRREL_SECRET_KEY": settings.SECRET_KEY,
        "PATH": f"{Path(PYTHON).parent}:{os.environ.get('PATH', '')}",
        "EPICS_CA_SERVER_PORT": str(args.port),
        "EPICS_CAS_SERVER_PORT": str(args.port),
        "EPICS_CA_REPEATER_PORT": str(args.port + 1),
    }
    redis = live.redis_client()
    redis_pid = int(redis.info("server")["process_id"])
    log = lambda text: print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)  # noqa: E731
    log(f"logs in {tmp}; database {env['SQUIRREL_DB_NAME']}; Redis {settings.REDIS_URL}; CA port {args.port}")

    names = [f"{PREFIX}{i:05d}" for i in range(args.pvs)]
    pages = [names[p * args.page_size : (p + 1) * args.page_size] for p in range(args.pages)]
    empty_registry()
    report = import_pvs(
        "live.csv",
        ("Setpoint,Readback,Description\n" + "".join(f"{n},,live bench\n" for n in names)).encode(),
        dry_run=False,
    )
    if not report.ok:
        raise SystemExit(f"registry import failed: {report.errors[:3]}")
    redis.flushdb()
    cookie = session_cookie()

    procs = []
    try:
        procs.append(spawn([str(Path(PYTHON).parent / "caRepeater")], env, tmp / "repeater.log"))
        db, ready = tmp / "live.db", tmp / "ioc.ready"
        db.write_text(load_db_text(names, changing, scan=".5 second"))
        ioc = spawn(
            [PYTHON, str(BENCH_MONITOR), "--serve-db", str(db), "--port", str(args.port), "--ready-file", str(ready)],
            env,
            tmp / "ioc.log",
        )
        procs.append(ioc)
        wait_for_file(ready, ioc, 120, "IOC")
        log(f"IOC: {changing} calc records at 2 Hz + {args.pvs - changing} ao")
        monitor = spawn([PYTHON, "manage.py", "monitor_pvs"], env, tmp / "monitor.log")
        procs.append(monitor)
        deadline = time.monotonic() + 90
        while redis.hlen(live.VALUES_KEY) < args.pvs:
            if time.monotonic() > deadline or monitor.poll() is not None:
                raise SystemExit(f"monitor: only {redis.hlen(live.VALUES_KEY)}/{args.pvs} values; see {tmp}")
            time.sleep(0.2)
        log(f"monitor: all {args.pvs} values in Redis")
        port = free_port()
        profile = ["-m", "cProfile", "-o", str(args.profile)] if args.profile else []
        daphne = spawn(
            [
                PYTHON,
                *profile,
                "-m",
                "squirrel_site.web_server",
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                "squirrel_site.asgi:application",
            ],
            env,
            tmp / "daphne.log",
        )
        procs.append(daphne)
        wait_for_port(port, daphne)
        log(f"daphne on 127.0.0.1:{port}, pid {daphne.pid}, RSS {rss_mb(daphne.pid):.0f} MB before any client")
        log(
            f"{args.clients} clients x {args.page_size} PVs over {args.pages} pages (+{args.stalled} stalled); "
            f"warm-up {args.warmup:.0f} s, measuring {args.duration:.0f} s"
        )
        pids = {
            "daphne": daphne.pid,
            "monitor": monitor.pid,
            "ioc": ioc.pid,
            "redis": redis_pid,
            "clients": os.getpid(),
        }
        notices = NoticeListener(redis, live.changes_channel(redis))
        notices.start()
        outcome = asyncio.run(drive_clients(args, ("127.0.0.1", port), cookie, pages, daphne.pid, pids, notices))
        beats = [b for b in live.read_heartbeats(redis) if str(b.get("owner", "")).endswith(f":{monitor.pid}")]
    finally:
        for proc in reversed(procs):
            stop(proc)
        redis.flushdb()
    print_report(args, outcome, beats)
    if not outcome["results"].values:
        print(f"bench_live: no value reached a client during the window; see {tmp}", file=sys.stderr)
        return 1
    return 0


def print_report(args, outcome, beats) -> None:
    results, window, rss, cpu = outcome["results"], outcome["window"], outcome["rss"], outcome["cpu"]
    p50, p95, p99 = results.percentile(0.5), results.percentile(0.95), results.percentile(0.99)
    messages = sum(len(t) for t in results.message_times)
    print(
        f"\n{args.clients} clients x {args.page_size} PVs at 2 Hz ({args.pages} distinct pages, "
        f"{args.pages * args.page_size} changing PVs of {args.pvs}), {window:.0f} s measured:"
    )
    print(
        f"  latency IOC timestamp -> client receive: p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
        f"p99 {p99 * 1000:.0f} ms  (target p95 <= {TARGET_P95_S * 1000:.0f} ms: "
        f"{'met' if p95 <= TARGET_P95_S else 'MISSED'})"
    )
    print(
        f"  of which change notice -> client receive (hub, stream, daphne): p50 "
        f"{results.percentile(0.5, web=True) * 1000:.0f} ms, p95 {results.percentile(0.95, web=True) * 1000:.0f} ms, "
        f"p99 {results.percentile(0.99, web=True) * 1000:.0f} ms"
    )
    if beats:
        print(f"  and IOC -> Redis (the monitor's heartbeat, p95 age): {beats[-1]['p95_age_s'] * 1000:.0f} ms")
    print(
        f"  values delivered: {results.values / window:,.0f}/s in {messages / window:,.1f} messages/s "
        f"({messages / window / args.clients:.2f} per client per s; most in any 1 s: {results.max_per_second()}); "
        f"full resyncs {results.full}"
    )
    values = [mb for _, mb in rss]
    third = max(1, len(values) // 3)
    print(
        f"  daphne RSS: {values[0]:.0f} MB at start of window, max {max(values):.0f} MB, end {values[-1]:.0f} MB; "
        f"median first third {statistics.median(values[:third]):.0f} MB, last third "
        f"{statistics.median(values[-third:]):.0f} MB"
    )
    print("  RSS over time (s: MB): " + ", ".join(f"{t:.0f}: {mb:.0f}" for t, mb in rss[:: max(1, len(rss) // 12)]))
    print("  CPU (% of one core): " + ", ".join(f"{name} {pct:.0f}%" for name, pct in cpu.items()))
    if args.stalled:
        early, late = outcome["stalled"]
        print(
            f"  stalled clients (never ack, never answer pings): messages sent to each before the window "
            f'{early} (MAX_UNACKED = 4), during it {late} ("dropped": daphne closed it after its ping '
            f"timeout)"
        )


if __name__ == "__main__":
    sys.exit(main())
