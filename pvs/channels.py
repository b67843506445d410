"""Both protocols behind one service: reads, puts, connects and metadata for any mix of addresses.

Callers outside ``pvs`` (snapshots, restores, previews) use :func:`service`; it sends Channel
Access addresses to :mod:`pvs.epics_io` (libca) and ``pva://`` addresses to :mod:`pvs.pva_bulk`
(p4p), both halves at once, and merges the answers, keyed by the addresses given. Each protocol's
client starts only when an address of its protocol first comes along, so a registry with no
pvAccess PV never starts a pvAccess context (and the other way round).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence

from pvs.epics_io import Metadata, PutRequest, PutResult, ReadResult
from pvs.protocols import split


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


def service() -> Service:
    """The process's service for both protocols."""
    return _service
