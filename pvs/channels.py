"""Both protocols behind one interface: reads, puts, connects and metadata for any mix of
addresses (:func:`service`), and subscriptions to any mix (:class:`ChannelSet`, the monitor's).

Callers outside ``pvs`` (snapshots, restores, previews) use :func:`service`; it sends Channel
Access addresses to :mod:`pvs.epics_io` (libca) and ``pva://`` addresses to :mod:`pvs.pva_bulk`
(p4p), both halves at once, and merges the answers, keyed by the addresses given. Each protocol's
client starts only when an address of its protocol first comes along, so a registry with no
pvAccess PV never starts a pvAccess context (and the other way round).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence

from pvs.epics_io import METADATA_PER_POLL, Metadata, PollResult, PutRequest, PutResult, ReadResult
from pvs.protocols import PVA, protocol_of, split

# The server a pvAccess channel is connected to, for the monitor's counts per server (its
# heartbeat's "hosts", monitor.health.judge_connections), comes from pvs.pva_bulk.ChannelSet.peers
# (pvxs's client report: p4p's subscriptions themselves do not say). A channel whose server that
# report has not named yet (it connected since the last look) counts under this name meanwhile.
PVA_HOST = "pvAccess"
# With both protocols subscribed, Channel Access is pended for at most this long at a time, so
# that pvAccess updates waiting meanwhile are taken within it (ca_pend_event always waits its
# whole time: it cannot return when the other protocol has work).
POLL_SLICE = 0.01
_SHORTEST_PEND = 1e-6  # libca's ca_pend_event(0) waits forever


def _ca():
    from pvs.epics_io import epics_service

    return epics_service()


def _pva():
    # Imported on first use: a process with no pvAccess address never loads p4p.
    from pvs.pva_bulk import pva_service

    return pva_service()


class Service:
    """Thread-safe; every method blocks its caller, as :class:`pvs.epics_io.EpicsService`'s do."""

    def __init__(self, ca: Callable[[], object] = _ca, pva: Callable[[], object] = _pva):
        self._ca, self._pva = ca, pva

    def connect(self, addresses: Iterable[str], timeout: float | None = None) -> set[str]:
        """The addresses connected within `timeout` s (each protocol's default if None)."""
        ca, pva = split(dict.fromkeys(addresses))
        return _both(
            ca and (lambda: self._ca().connect(ca, timeout)),
            pva and (lambda: self._pva().connect(pva, timeout)),
            set(),
            set.union,
        )

    def read(self, addresses: Sequence[str], timeout: float = 2.0) -> dict[str, ReadResult]:
        """The current value of every address, in the order given."""
        unique = list(dict.fromkeys(addresses))
        ca, pva = split(unique)
        merged = _both(
            ca and (lambda: self._ca().read(ca, timeout)),
            pva and (lambda: self._pva().read(pva, timeout)),
            {},
            lambda a, b: {**a, **b},
        )
        return {address: merged[address] for address in unique}

    def put(
        self, requests: Sequence[PutRequest], timeout: float = 5.0, max_outstanding: int = 2000
    ) -> dict[str, PutResult]:
        """Write values (one request per address), each protocol's half at once and each with at
        most `max_outstanding` puts unfinished; see :class:`pvs.epics_io.PutResult`."""
        by_address = {request.address: request for request in requests}
        if len(by_address) != len(requests):
            raise ValueError("put takes one request per address")
        ca, pva = split(by_address)
        merged = _both(
            ca and (lambda: self._ca().put([by_address[a] for a in ca], timeout, max_outstanding)),
            pva and (lambda: self._pva().put([by_address[a] for a in pva], timeout, max_outstanding)),
            {},
            lambda a, b: {**a, **b},
        )
        return {address: merged[address] for address in by_address}

    def metadata(self, addresses: Sequence[str]) -> dict[str, Metadata | None]:
        """The latest metadata of each address (None if it never connected)."""
        ca, pva = split(addresses)
        merged = {**(self._ca().metadata(ca) if ca else {}), **(self._pva().metadata(pva) if pva else {})}
        return {address: merged[address] for address in addresses}


def _both(first, second, empty, combine):
    """Run the two calls (either may be falsy: nothing to do) at once; combine their results."""
    if not first or not second:
        call = first or second
        return call() if call else empty
    box: dict[str, object] = {}

    def run_second() -> None:
        try:
            box["result"] = second()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=run_second, name="pva-call", daemon=True)
    thread.start()
    try:
        result = first()
    finally:
        thread.join()
    if "error" in box:
        raise box["error"]
    return combine(result, box["result"])


_service = Service()


def _ca_channels():
    from pvs.epics_io import ChannelSet as CaChannelSet

    return CaChannelSet()


def _pva_channels():
    # Imported on first use: a monitor of a registry with no pvAccess address never loads p4p.
    from pvs.pva_bulk import ChannelSet as PvaChannelSet

    return PvaChannelSet()


class ChannelSet:
    """Subscriptions to any mix of Channel Access and ``pva://`` addresses, polled by one thread.

    A :class:`pvs.epics_io.ChannelSet` holds the Channel Access addresses and a
    :class:`pvs.pva_bulk.ChannelSet` the pvAccess ones, each created when the first address of
    its protocol is added (``ca`` and ``pva`` make them). :meth:`poll` returns what both
    delivered as one :class:`PollResult`, within its timeout (not the sum of two). A pvAccess
    channel's metadata names its server as its host when :meth:`pva_peers` last saw it connected
    to one, else :data:`PVA_HOST`.
    """

    def __init__(self, ca: Callable[[], object] = _ca_channels, pva: Callable[[], object] = _pva_channels):
        self._make_ca, self._make_pva = ca, pva
        self._ca = self._pva = None
        self._closed = False
        self._metadata_per_poll = METADATA_PER_POLL
        self._pva_peers: dict[str, str] = {}  # the latest pva_peers(), for new connections' metadata

    # What the monitor sets: DBR_CTRL gets per poll (Channel Access only; pvAccess values carry
    # their metadata).
    @property
    def metadata_per_poll(self) -> int:
        return self._metadata_per_poll

    @metadata_per_poll.setter
    def metadata_per_poll(self, count: int) -> None:
        self._metadata_per_poll = count
        if self._ca is not None:
            self._ca.metadata_per_poll = count

    def __len__(self) -> int:
        return sum(len(part) for part in self._parts())

    def __contains__(self, address: str) -> bool:
        part = self._part_of(address)
        return part is not None and address in part

    @property
    def addresses(self) -> set[str]:
        ca = self._ca.addresses if self._ca is not None else set()
        return ca | (self._pva.addresses() if self._pva is not None else set())

    def add(self, addresses: Iterable[str]) -> None:
        """Subscribe every address not subscribed yet (returns at once)."""
        self._check_open()
        ca, pva = split(dict.fromkeys(addresses))
        if pva:
            if self._pva is None:
                self._pva = self._make_pva()
            self._pva.add(pva)
        if ca:
            if self._ca is None:
                self._ca = self._make_ca()
                self._ca.metadata_per_poll = self._metadata_per_poll
            self._ca.add(ca)

    def remove(self, addresses: Iterable[str]) -> None:
        ca, pva = split(dict.fromkeys(addresses))
        if ca and self._ca is not None:
            self._ca.remove(ca)
        if pva and self._pva is not None:
            self._pva.remove(pva)

    def is_connected(self, address: str) -> bool:
        part = self._part_of(address)
        return part is not None and part.is_connected(address)

    def connected_count(self) -> int:
        return sum(part.connected_count() for part in self._parts())

    def pva_peers(self) -> dict[str, str]:
        """{pvAccess address: its server, "host:port"} of the pvAccess channels connected now
        (pvs.pva_bulk.ChannelSet.peers: one look at every channel, benchmarks/bench_pva_peers.py;
        the monitor asks after pvAccess channels connected). Metadata of channels connecting
        later names these servers."""
        self._pva_peers = self._pva.peers() if self._pva is not None else {}
        return dict(self._pva_peers)

    def connection_counts_by_host(self) -> dict[str, tuple[int, int]]:
        """(connected, disconnected) channels per server; never-connected ones under ''.
        Connected pvAccess channels count under their server (:meth:`pva_peers`), or under
        :data:`PVA_HOST` if it is not known yet; disconnected ones under '' (as Channel Access
        channels do: the host is asked of a connected channel)."""
        counts = dict(self._ca.connection_counts_by_host()) if self._ca is not None else {}
        if self._pva is not None:
            peers = self.pva_peers()
            connected = self._pva.connected_count()
            disconnected = len(self._pva) - connected
            for peer in peers.values():
                before = counts.get(peer, (0, 0))
                counts[peer] = (before[0] + 1, before[1])
            if connected > len(peers):
                counts[PVA_HOST] = (connected - len(peers), 0)
            if disconnected:
                before = counts.get("", (0, 0))
                counts[""] = (before[0], before[1] + disconnected)
        return counts

    def metadata(self, address: str) -> Metadata | None:
        """A pvAccess address's metadata as of its latest connection (None for Channel Access:
        its metadata comes in the poll results only)."""
        part = self._part_of(address)
        return part.metadata(address) if part is not None and part is self._pva else None

    def enum_labels(self, address: str) -> list[str] | None:
        """The labels of an enum channel, once its metadata has arrived."""
        part = self._part_of(address)
        if part is None:
            return None
        if part is self._ca:
            return part.enum_labels(address)
        meta = part.metadata(address)
        return meta.enum_labels if meta is not None else None

    def poll(self, timeout: float) -> PollResult:
        """Up to `timeout` seconds for updates; what both protocols delivered meanwhile.

        With both protocols, Channel Access is pended in slices of :data:`POLL_SLICE` and
        pvAccess looked at (without waiting) after each: the call returns once pvAccess has
        something or the time is up, with everything Channel Access delivered meanwhile."""
        self._check_open()
        ca, pva = self._ca, self._pva
        if pva is None:
            if ca is None:
                time.sleep(timeout)
                return PollResult()
            return ca.poll(timeout)
        if ca is None:
            return self._named(pva.poll(timeout))
        deadline = time.monotonic() + timeout
        result = PollResult()
        while True:
            left = deadline - time.monotonic()
            _extend(result, ca.poll(max(min(POLL_SLICE, left), _SHORTEST_PEND)))
            got = self._named(pva.poll(0.0))
            _extend(result, got)
            if got or time.monotonic() >= deadline:
                return result

    def close(self) -> None:
        """Close both protocols' sets; this one cannot be used again."""
        self._closed = True
        for part in self._parts():
            part.close()
        self._ca = self._pva = None

    def _named(self, result: PollResult) -> PollResult:
        peers = self._pva_peers
        for meta in result.metadata:
            meta.host = meta.host or peers.get(meta.address) or PVA_HOST
        return result

    def _parts(self) -> list:
        return [part for part in (self._ca, self._pva) if part is not None]

    def _part_of(self, address: str):
        return self._pva if protocol_of(address) == PVA else self._ca

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this channel set is closed")


def _extend(result: PollResult, more: PollResult) -> None:
    result.readings += more.readings
    result.connected += more.connected
    result.disconnected += more.disconnected
    result.metadata += more.metadata


def service() -> Service:
    """The process's service for both protocols."""
    return _service
