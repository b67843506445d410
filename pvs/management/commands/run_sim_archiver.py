"""Serve the simulated Archiver Appliance (pvs.sim_archiver), recording off the simulated IOC."""

import signal
import threading
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from pvs import sim_archiver


class Command(BaseCommand):
    help = (
        "Run a simulated Archiver Appliance: records the registry's addresses (or --pvs) over Channel Access "
        "and pvAccess and answers getDataAtTime and getData.json from those samples."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, required=True, help="HTTP port")
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback only)")
        parser.add_argument(
            "--pvs", nargs="*", metavar="ADDRESS", help="addresses to archive (default: every address of the registry)"
        )
        parser.add_argument(
            "--period", type=float, default=0.0, metavar="S", help="keep at most one sample per PV per S seconds"
        )
        parser.add_argument(
            "--history",
            type=int,
            default=sim_archiver.DEFAULT_HISTORY,
            metavar="N",
            help=f"samples kept per PV (a ring; default {sim_archiver.DEFAULT_HISTORY})",
        )
        parser.add_argument(
            "--seed-hours",
            type=float,
            default=0.0,
            metavar="H",
            help="fabricate a past of H hours before each PV's first value (one sample per 10 minutes, "
            "numbers within 1%%): made up, not recorded",
        )
        parser.add_argument("--ready-file", metavar="FILE", help="create this file once the server is serving")

    def handle(self, *args, **options):
        if not 0 < options["port"] < 65536:
            raise CommandError(f"--port must be between 1 and 65535, not {options['port']}")
        if options["history"] < 1 or options["period"] < 0 or options["seed_hours"] < 0:
            raise CommandError("--history must be at least 1; --period and --seed-hours at least 0")
        addresses = options["pvs"] if options["pvs"] else registry_addresses()
        store = sim_archiver.SampleStore(
            history=options["history"], period=options["period"], seed_hours=options["seed_hours"]
        )
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        try:
            server = sim_archiver.ArchiverServer((options["host"], options["port"]), store)
        except OSError as exc:
            raise CommandError(f"cannot listen on {options['host']}:{options['port']}: {exc}") from None
        recorder = sim_archiver.Recorder(store, addresses)
        recorder.start()
        serving = threading.Thread(target=server.serve_forever, name="sim-archiver-http", daemon=True)
        serving.start()
        ready_file = Path(options["ready_file"]) if options["ready_file"] else None
        if ready_file:
            ready_file.touch()
        self.stdout.write(
            f"Simulated archiver recording {len(addresses)} addresses, serving http://{options['host']}:"
            f"{options['port']}" + (f" (seeded {options['seed_hours']:g} h back)" if options["seed_hours"] else "")
        )
        self.stdout.flush()
        while not stop.wait(60):
            self.stdout.write(f"Simulated archiver: {len(store)} PVs, {store.sample_count()} samples")
            self.stdout.flush()
        server.shutdown()
        recorder.stop()
        if ready_file:
            ready_file.unlink(missing_ok=True)
        self.stdout.write("Simulated archiver stopped")


def registry_addresses() -> list[str]:
    """Every address of the registry (setpoints, readbacks, configs), each once."""
    from pvs.models import PV

    addresses = []
    for row in PV.objects.order_by("id").values_list("setpoint_address", "readback_address", "config_address"):
        addresses += [address for address in row if address]
    return list(dict.fromkeys(addresses))
