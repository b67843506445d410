"""Serve the simulated pvAccess PVs (pvs.sim_pva) from a p4p server, on loopback only."""

import random
import signal
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from pvs import sim_pva


class Command(BaseCommand):
    help = "Run a pvAccess server (p4p) serving simulated PVs of every normative type Squirrel reads."

    def add_arguments(self, parser):
        parser.add_argument("--pvs", type=int, default=1000, help="number of PVs in the whole set (default 1000)")
        parser.add_argument("--prefix", default=settings.SIM_IOC_PREFIX, help="PV name prefix")
        parser.add_argument("--seed", type=int, default=0, help="seed for the values")
        parser.add_argument(
            "--port",
            type=int,
            required=True,
            help="TCP port; the UDP search port is the next one (clients list 127.0.0.1:PORT+1)",
        )
        parser.add_argument("--shard", type=int, default=0, help="serve only shard N of --shards (several servers)")
        parser.add_argument("--shards", type=int, default=1, help="how many servers share the set")
        parser.add_argument("--ready-file", metavar="FILE", help="create this file once the server is serving")
        parser.add_argument(
            "--put-delay",
            type=float,
            default=0.0,
            metavar="SECONDS",
            help="apply each put at once but complete it this much later, saying so on stdout, as a record "
            "whose processing takes time (fault tests kill the server while puts are in flight; default 0)",
        )
        parser.add_argument(
            "--updates-per-second",
            type=int,
            default=0,
            metavar="N",
            help="post N new values a second, spread over this server's doubles in turn (default 0: values "
            "change only when put)",
        )

    def handle(self, *args, **options):
        if not 0 < options["port"] < 65535:
            raise CommandError(f"--port must be between 1 and 65534, not {options['port']}")
        if not 0 <= options["put_delay"] <= 60:
            raise CommandError(f"--put-delay must be between 0 and 60 seconds, not {options['put_delay']}")
        if not 0 <= options["updates_per_second"] <= 1_000_000:
            raise CommandError(
                f"--updates-per-second must be between 0 and 1000000, not {options['updates_per_second']}"
            )
        try:
            pvs = sim_pva.shard(
                sim_pva.generate(options["pvs"], options["prefix"], options["seed"]),
                options["shard"],
                options["shards"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        start = time.monotonic()
        server, shared = serve(pvs, options["port"], options["put_delay"], self.stdout)
        if options["updates_per_second"]:
            doubles = [pv for pv, sim in zip(shared, pvs, strict=True) if sim.type == sim_pva.DOUBLE]
            threading.Thread(
                target=change_values, args=(doubles, options["updates_per_second"], stop), daemon=True
            ).start()
        ready_file = Path(options["ready_file"]) if options["ready_file"] else None
        if ready_file:
            ready_file.touch()
        self.stdout.write(
            f"Simulated pvAccess server serving {len(pvs)} PVs on 127.0.0.1 TCP {options['port']}, "
            f"UDP {options['port'] + 1} (ready in {time.monotonic() - start:.1f} s)"
        )
        self.stdout.flush()
        stop.wait()
        server.stop()
        if ready_file:
            ready_file.unlink(missing_ok=True)
        self.stdout.write("Simulated pvAccess server stopped")


CHANGE_TICK = 0.02  # s between two batches of changed values


def change_values(shared: list, per_second: int, stop: threading.Event) -> None:
    """Post `per_second` new values a second until `stop`, to `shared` (SharedPVs of NTScalar
    doubles) in turn, each stamped with the time it is posted (what the monitor's age counts
    from). Batches every :data:`CHANGE_TICK` s, the count owed so far, so the rate holds whatever
    each batch costs; a server that cannot keep up posts fewer, which the monitor's heartbeat
    shows as fewer updates a second."""
    from p4p.server.raw import SharedPV

    if not shared:
        return
    post = SharedPV.post
    rng = random.Random(1)
    started, done, turn = time.monotonic(), 0, 0
    while not stop.wait(CHANGE_TICK):
        owed = int((time.monotonic() - started) * per_second) - done
        for _ in range(owed):
            post(shared[turn], rng.uniform(-100.0, 100.0), timestamp=time.time())
            turn = (turn + 1) % len(shared)
        done += owed


def server_conf(port: int) -> dict[str, str]:
    """The server's whole configuration (the environment is not read): loopback, TCP `port`,
    UDP `port` + 1, beacons to loopback only."""
    return {
        "EPICS_PVAS_INTF_ADDR_LIST": "127.0.0.1",
        "EPICS_PVAS_SERVER_PORT": str(port),
        "EPICS_PVAS_BROADCAST_PORT": str(port + 1),
        "EPICS_PVAS_AUTO_BEACON_ADDR_LIST": "NO",
        "EPICS_PVAS_BEACON_ADDR_LIST": f"127.0.0.1:{port + 1}",
    }


def serve(pvs: list[sim_pva.SimPV], port: int, put_delay: float = 0.0, out=None):
    """Start a p4p server for `pvs` on `port`: (server, its shared PVs). Every put is applied
    (posted to every subscriber) at once and completes at once, or `put_delay` seconds later
    (each such put is announced on `out` as it arrives: ``put NAME completes in S s``)."""
    # Imported here, as run_sim_ioc imports softioc: only serving needs the server library.
    from p4p.nt import NTEnum, NTScalar, NTTable
    from p4p.server import Server, StaticProvider
    from p4p.server.raw import SharedPV

    class Apply:
        def put(self, pv, op):
            # Stamped when applied, as an IOC stamps a record when a put processes it: the client's
            # value carries no time of its own (posted as it is, a put left the PV at timestamp 0).
            pv.post(op.value(), timestamp=time.time())
            if not put_delay:
                op.done()
                return
            out.write(f"put {op.name()} completes in {put_delay} s")
            out.flush()
            timer = threading.Timer(put_delay, op.done)
            timer.daemon = True
            timer.start()

    handler = Apply()
    types = {
        sim_pva.DOUBLE: NTScalar("d", display=True, form=True),
        sim_pva.INT: NTScalar("i", display=True, form=True),
        sim_pva.BOOL: NTScalar("?"),
        sim_pva.STRING: NTScalar("s"),
        sim_pva.DOUBLE_ARRAY: NTScalar("ad", display=True, form=True),
        sim_pva.STRING_ARRAY: NTScalar("as"),
        sim_pva.ENUM: NTEnum(),
        sim_pva.TABLE: NTTable(list(sim_pva.TABLE_COLUMNS)),
    }
    now = time.time()
    provider = StaticProvider("squirrel-sim")
    shared = []
    for pv in pvs:
        nt = types[pv.type]
        if pv.type == sim_pva.ENUM:
            initial = nt.wrap({"value.index": pv.value, "value.choices": list(sim_pva.ENUM_CHOICES)}, timestamp=now)
        elif pv.type == sim_pva.TABLE:
            rows = [dict(zip(pv.value, row, strict=True)) for row in zip(*pv.value.values(), strict=True)]
            initial = nt.wrap(rows, timestamp=now)
        elif pv.type in (sim_pva.DOUBLE, sim_pva.INT, sim_pva.DOUBLE_ARRAY):
            fields = {"value": pv.value, "display.units": pv.units, "display.precision": pv.precision}
            if pv.type != sim_pva.DOUBLE_ARRAY:
                fields.update({"display.limitLow": pv.low, "display.limitHigh": pv.high})
            initial = nt.wrap(fields, timestamp=now)
        else:
            initial = nt.wrap(pv.value, timestamp=now)
        shared_pv = SharedPV(handler=handler, nt=nt, initial=initial)
        provider.add(pv.name, shared_pv)
        shared.append(shared_pv)
    return Server(providers=[provider], conf=server_conf(port), useenv=False), shared
