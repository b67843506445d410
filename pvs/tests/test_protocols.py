"""Addresses' protocols (pvs.protocols) and the one service for both (pvs.channels), with each
protocol's client replaced by a recorder (the real clients: test_pva_bulk.py, test_epics_io.py)."""

import threading

import pytest

from pvs import channels, protocols
from pvs.epics_io import Metadata, PutRequest, PutResult, ReadResult


@pytest.mark.parametrize(
    ("written", "protocol", "name", "stored"),
    [
        ("SR:QF1:I", "ca", "SR:QF1:I", "SR:QF1:I"),
        ("ca://SR:QF1:I", "ca", "SR:QF1:I", "SR:QF1:I"),
        ("CA://SR:QF1:I", "ca", "SR:QF1:I", "SR:QF1:I"),
        ("pva://SR:QF1:I", "pva", "SR:QF1:I", "pva://SR:QF1:I"),
        ("PVA://SR:QF1:I", "pva", "SR:QF1:I", "pva://SR:QF1:I"),
    ],
)
def test_an_address_is_channel_access_unless_it_says_pva(written, protocol, name, stored):
    assert protocols.scheme_of(written) == (protocol, name)
    assert protocols.normalized(written) == stored
    assert protocols.protocol_of(stored) == protocol
    assert protocols.name_of(stored) == name


def test_an_unknown_scheme_is_left_for_the_validator():
    assert protocols.scheme_of("http://X") == (None, "X")
    assert protocols.normalized("http://X") == "http://X"


def test_split_keeps_the_order_of_each_protocol():
    assert protocols.split(["A", "pva://B", "C", "pva://D"]) == (["A", "C"], ["pva://B", "pva://D"])


class Recorder:
    def __init__(self, name):
        self.name, self.calls, self.threads = name, [], set()

    def _seen(self, call, addresses):
        self.calls.append((call, list(addresses)))
        self.threads.add(threading.current_thread().name)

    def read(self, addresses, timeout=2.0):
        self._seen("read", addresses)
        return {a: ReadResult(a, None, f"{self.name} {timeout}") for a in addresses}

    def put(self, requests, timeout=5.0, *rest):
        self._seen("put", [r.address for r in requests])
        return {r.address: PutResult(r.address, True, None, r.wait) for r in requests}

    def connect(self, addresses, timeout=None):
        self._seen("connect", addresses)
        return set(addresses)

    def metadata(self, addresses):
        self._seen("metadata", addresses)
        return {a: Metadata(a, self.name, 1) for a in addresses}


def test_the_service_sends_each_address_to_its_protocol_and_answers_in_the_order_given():
    ca, pva = Recorder("ca"), Recorder("pva")
    service = channels.Service(lambda: ca, lambda: pva)

    results = service.read(["pva://B", "A", "pva://B", "C"], timeout=3.0)

    assert list(results) == ["pva://B", "A", "C"]
    assert [r.error for r in results.values()] == ["pva 3.0", "ca 3.0", "ca 3.0"]
    assert ca.calls == [("read", ["A", "C"])] and pva.calls == [("read", ["pva://B"])]
    assert pva.threads == {"pva-call"}  # both halves at once

    puts = service.put([PutRequest("pva://B", 1, wait=True), PutRequest("A", 2)])
    assert list(puts) == ["pva://B", "A"] and puts["pva://B"].completed
    assert service.connect(["A", "pva://B"]) == {"A", "pva://B"}
    assert [m.kind for m in service.metadata(["pva://B", "A"]).values()] == ["pva", "ca"]
    with pytest.raises(ValueError):
        service.put([PutRequest("A", 1), PutRequest("A", 2)])


def test_a_protocol_without_addresses_never_starts_its_client():
    def never():
        raise AssertionError("started")

    ca = Recorder("ca")
    assert channels.Service(lambda: ca, never).read(["A"])["A"].error == "ca 2.0"
    pva = Recorder("pva")
    assert channels.Service(never, lambda: pva).read(["pva://A"])["pva://A"].error == "pva 2.0"
    assert channels.Service(never, never).read([]) == {}


def test_a_failure_in_either_half_reaches_the_caller():
    class Broken(Recorder):
        def read(self, addresses, timeout=2.0):
            raise RuntimeError("pvAccess context closed")

    service = channels.Service(lambda: Recorder("ca"), lambda: Broken("pva"))
    with pytest.raises(RuntimeError, match="closed"):
        service.read(["A", "pva://B"])
