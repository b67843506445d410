"""pvs.channels.ChannelSet: one set of subscriptions for both protocols, with fakes standing in for
the Channel Access set (pvs.epics_io) and the pvAccess set (pvs.pva_bulk). The real sets against
the simulated IOCs: monitor/tests/test_monitor_pva.py."""

import pytest

from pvs import channels
from pvs.epics_io import Metadata, PollResult
from squirrel_site.epics_values import Value


class FakeSet:
    """What pvs.channels.ChannelSet uses of either protocol's set; `results` are handed out by
    poll in turn (then empty ones), every poll's timeout is recorded."""

    def __init__(self, results=()):
        self.subscribed: dict[str, bool] = {}  # address: connected
        self.results = list(results)
        self.timeouts: list[float] = []
        self.closed = False
        self.metadata_per_poll = None
        self.meta: dict[str, Metadata] = {}

    def __len__(self):
        return len(self.subscribed)

    def __contains__(self, address):
        return address in self.subscribed

    def add(self, addresses):
        for address in addresses:
            self.subscribed.setdefault(address, False)

    def remove(self, addresses):
        for address in addresses:
            self.subscribed.pop(address, None)

    def is_connected(self, address):
        return self.subscribed.get(address, False)

    def connected_count(self):
        return sum(self.subscribed.values())

    def poll(self, timeout):
        self.timeouts.append(timeout)
        return self.results.pop(0) if self.results else PollResult()

    def metadata(self, address):
        return self.meta.get(address)

    def close(self):
        self.closed = True


class FakeCa(FakeSet):
    @property
    def addresses(self):
        return set(self.subscribed)

    def connection_counts_by_host(self):
        connected = self.connected_count()
        return {"ioc:5064": (connected, 0), "": (0, len(self) - connected)}

    def enum_labels(self, address):
        return ["Off", "On"] if address in self.subscribed else None


class FakePva(FakeSet):
    def __init__(self, results=()):
        super().__init__(results)
        self.servers: dict[str, str] = {}  # address: the server the client report names

    def addresses(self):
        return set(self.subscribed)

    def peers(self):
        """As pvs.pva_bulk.ChannelSet.peers: the connected channels the client report names a server for."""
        return {address: server for address, server in self.servers.items() if self.subscribed.get(address)}


def reading(address, value=1.0):
    return Value(address, "float", value, 0, 0, 1.0, 2.0, True)


@pytest.fixture
def made():
    """The fakes the set under test has made so far, by protocol."""
    return {}


@pytest.fixture
def make_set(made):
    def make(ca_results=(), pva_results=()):
        def ca():
            made["ca"] = FakeCa(ca_results)
            return made["ca"]

        def pva():
            made["pva"] = FakePva(pva_results)
            return made["pva"]

        return channels.ChannelSet(ca=ca, pva=pva)

    return make


def test_each_protocols_set_is_made_when_its_first_address_comes(make_set, made):
    mixed = make_set()
    mixed.add(["A:1"])
    assert set(made) == {"ca"}
    mixed.add(["pva://B:1", "A:1"])
    assert set(made) == {"ca", "pva"}
    assert set(made["ca"].subscribed) == {"A:1"} and set(made["pva"].subscribed) == {"pva://B:1"}
    assert len(mixed) == 2 and "pva://B:1" in mixed and "A:1" in mixed and "pva://A:1" not in mixed
    assert mixed.addresses == {"A:1", "pva://B:1"}


def test_a_pva_only_registry_never_makes_a_channel_access_set(make_set, made):
    mixed = make_set()
    mixed.add(["pva://B:1", "pva://B:2"])
    mixed.remove(["pva://B:1", "A:9"])
    mixed.poll(0.5)
    assert set(made) == {"pva"} and set(made["pva"].subscribed) == {"pva://B:2"}
    assert made["pva"].timeouts == [0.5]  # one protocol: its own poll, with the whole timeout


def test_metadata_per_poll_reaches_the_channel_access_set_made_later(make_set, made):
    mixed = make_set()
    mixed.metadata_per_poll = 0
    mixed.add(["A:1"])
    assert made["ca"].metadata_per_poll == 0
    mixed.metadata_per_poll = 500
    assert made["ca"].metadata_per_poll == 500 and mixed.metadata_per_poll == 500


def test_poll_merges_both_protocols_and_names_the_pvaccess_host(make_set, made):
    pva_meta = Metadata("pva://B:1", "float", 1, units="mA")
    ca_meta = Metadata("A:1", "float", 1, host="ioc:5064")
    mixed = make_set(
        ca_results=[PollResult(readings=[reading("A:1")], connected=["A:1"], metadata=[ca_meta])],
        pva_results=[
            PollResult(readings=[reading("pva://B:1")], connected=["pva://B:1"], metadata=[pva_meta]),
            PollResult(disconnected=["pva://B:1"]),
        ],
    )
    mixed.add(["A:1", "pva://B:1"])
    first = mixed.poll(1.0)
    assert [v.address for v in first.readings] == ["A:1", "pva://B:1"]
    assert first.connected == ["A:1", "pva://B:1"]
    assert {m.address: m.host for m in first.metadata} == {"A:1": "ioc:5064", "pva://B:1": channels.PVA_HOST}
    assert mixed.poll(1.0).disconnected == ["pva://B:1"]


def test_a_pvaccess_channel_connecting_again_names_the_server_last_seen(make_set, made):
    mixed = make_set(
        pva_results=[PollResult(connected=["pva://B:1"], metadata=[Metadata("pva://B:1", "float", 1)])],
    )
    mixed.add(["pva://B:1"])
    made["pva"].subscribed["pva://B:1"] = True
    made["pva"].servers = {"pva://B:1": "10.0.0.1:5075"}
    assert mixed.pva_peers() == {"pva://B:1": "10.0.0.1:5075"}
    assert [m.host for m in mixed.poll(1.0).metadata] == ["10.0.0.1:5075"]


def test_poll_does_not_add_the_two_timeouts(make_set, made):
    # pvAccess has work at once: Channel Access is pended one slice, pvAccess never waits.
    mixed = make_set(pva_results=[PollResult(readings=[reading("pva://B:1")])])
    mixed.add(["A:1", "pva://B:1"])
    assert mixed.poll(1.0).readings
    assert made["ca"].timeouts == [channels.POLL_SLICE] and made["pva"].timeouts == [0.0]


def test_poll_with_nothing_pending_pends_channel_access_in_slices_up_to_the_timeout(make_set, made, monkeypatch):
    clock = [100.0]

    def pend(timeout):
        clock[0] += timeout
        return PollResult()

    monkeypatch.setattr(channels.time, "monotonic", lambda: clock[0])
    mixed = make_set()
    mixed.add(["A:1", "pva://B:1"])
    made["ca"].poll = pend
    assert not mixed.poll(0.035)
    assert clock[0] == pytest.approx(100.035)  # the timeout once, not the sum of two
    assert made["pva"].timeouts == [0.0] * 4  # looked at after each slice, never waited on


def test_counts_by_host_put_connected_pvaccess_channels_under_their_server(make_set, made):
    mixed = make_set()
    mixed.add(["A:1", "A:2", "pva://B:1", "pva://B:2", "pva://B:3", "pva://C:1"])
    made["ca"].subscribed["A:1"] = True
    pva = made["pva"]
    pva.subscribed["pva://B:1"] = pva.subscribed["pva://B:2"] = pva.subscribed["pva://C:1"] = True
    # B:2 connected since the client report's last look: counted under the aggregate name meanwhile.
    pva.servers = {"pva://B:1": "10.0.0.1:5075", "pva://C:1": "10.0.0.2:5075", "pva://B:3": "10.0.0.1:5075"}
    assert mixed.connection_counts_by_host() == {
        "ioc:5064": (1, 0),
        "10.0.0.1:5075": (1, 0),
        "10.0.0.2:5075": (1, 0),
        channels.PVA_HOST: (1, 0),
        "": (0, 2),
    }
    assert mixed.connected_count() == 4
    assert mixed.is_connected("pva://B:1") and not mixed.is_connected("pva://B:3") and mixed.is_connected("A:1")
    assert not mixed.is_connected("pva://nowhere")


def test_enum_labels_and_metadata_of_either_protocol(make_set, made):
    mixed = make_set()
    mixed.add(["A:1", "pva://E:1"])
    made["pva"].meta["pva://E:1"] = Metadata("pva://E:1", "enum", 1, enum_labels=["Off", "On", "Fault"])
    assert mixed.enum_labels("A:1") == ["Off", "On"]
    assert mixed.enum_labels("pva://E:1") == ["Off", "On", "Fault"]
    assert mixed.metadata("pva://E:1").kind == "enum" and mixed.metadata("A:1") is None


def test_close_closes_both_and_the_set_refuses_more_work(make_set, made):
    mixed = make_set()
    mixed.add(["A:1", "pva://B:1"])
    mixed.close()
    assert made["ca"].closed and made["pva"].closed
    with pytest.raises(RuntimeError, match="closed"):
        mixed.add(["A:2"])
    with pytest.raises(RuntimeError, match="closed"):
        mixed.poll(0.1)
