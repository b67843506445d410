"""Placeholder for the PV monitor until the monitor issue lands: says so, then idles."""

import signal
import threading

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Keep every PV's live value in Redis (not built yet: this placeholder only idles)."

    def handle(self, *args, **options):
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        self.stdout.write(
            self.style.WARNING(
                "monitor_pvs: PLACEHOLDER - the live-value monitor is not built yet; "
                "no live values are written to Redis. Idling until stopped."
            )
        )
        stop.wait()
