"""systemd's notification protocol (sd_notify): a datagram to the unix socket in $NOTIFY_SOCKET.

The worker and the monitor run as `Type=notify` services with a watchdog
(docs/deploy/systemd/): they say READY=1 once they serve and WATCHDOG=1 from their live loops.
Without NOTIFY_SOCKET (not started by systemd) every call does nothing.
"""

import os
import socket
import time


def notify(state: str) -> bool:
    """Send `state` ("READY=1", "WATCHDOG=1", "STOPPING=1") to systemd; False if not under systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(state.encode(), address)
    return True


class Watchdog:
    """Sends WATCHDOG=1 at most every `interval` seconds, however often `alive()` is called."""

    def __init__(self, interval: float = 1.0):
        self.interval, self._last = interval, float("-inf")

    def alive(self) -> None:
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            notify("WATCHDOG=1")
