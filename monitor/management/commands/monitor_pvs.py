"""Keep every registry PV's live value in Redis (a thin loop over monitor.monitor.Monitor)."""

import logging
import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from monitor.live import Shard
from monitor.monitor import Monitor, MonitorSettings


class Command(BaseCommand):
    help = (
        "Subscribe to every setpoint, readback and config address of the registry and keep their "
        "live values in Redis. Run several for high availability (one leads, the others stand by) "
        "and --shard i/N on N machines to share the load."
    )

    def add_arguments(self, parser):
        parser.add_argument("--shard", default="0/1", help="this monitor's share of the registry, i/N (default 0/1)")
        parser.add_argument("--flush-interval", type=float, default=0.1, help="seconds between Redis writes")
        parser.add_argument("--registry-interval", type=float, default=2.0, help="seconds between registry checks")
        parser.add_argument("--lease-ttl", type=float, default=5.0, help="seconds before a dead leader's lease expires")
        parser.add_argument(
            "--stage-timeout",
            type=float,
            default=2.0,
            help="at start-up, seconds the readback and config addresses wait for the setpoints' first values "
            "(0: subscribe everything at once)",
        )

    def handle(self, *args, **options):
        try:
            shard = Shard.parse(options["shard"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        for name in ("flush_interval", "registry_interval", "lease_ttl"):
            if not options[name] > 0:
                raise CommandError(f"--{name.replace('_', '-')} must be a positive number of seconds")
        if not options["stage_timeout"] >= 0:
            raise CommandError("--stage-timeout must be 0 or a positive number of seconds")
        logging.getLogger("monitor").setLevel(logging.INFO)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        settings = MonitorSettings(
            shard=shard,
            flush_interval=options["flush_interval"],
            registry_interval=options["registry_interval"],
            lease_ttl=options["lease_ttl"],
            stage_timeout=options["stage_timeout"],
        )
        Monitor(settings).run(stop)
