"""The monitor with a registry mixing both protocols: the simulated Channel Access IOC and the
simulated pvAccess server, real Redis, p4p's own client in another process writing to the server
(marker `ioc`)."""

import json
import time

import msgpack
import pytest

from monitor import live
from monitor.monitor import Monitor, MonitorSettings
from pvs import channels, pva_bulk, sim, sim_pva
from pvs.models import PV
from pvs.protocols import name_of
from squirrel_site.testing import eventually

FAST = dict(flush_interval=0.05, registry_interval=0.2, heartbeat_interval=0.2, lease_ttl=60.0, connect_grace=1.0)


def pva(name: str) -> str:
    return f"pva://{name}"


@pytest.fixture
def mixed_registry(sim_ioc_addresses, sim_ioc, pva_server):
    """The simulated IOC's PVs and one pvAccess PV of every simulated type; one PV whose setpoint
    is pvAccess and readback Channel Access, one the other way round. {type: address} of the
    pvAccess PVs, plus "pva_readback" (of a Channel Access setpoint) and "ca_readback" (of a
    pvAccess setpoint)."""
    addresses = {kind: pva(pva_server.of_type(kind).name) for kind in sim_pva.TYPES}
    PV.objects.bulk_create(PV(setpoint_address=address) for address in addresses.values())
    ca_pv = sim_ioc.of_kind(sim.INT)[0]
    second_double = [pv for pv in pva_server.pvs if pv.type == sim_pva.DOUBLE][1]
    PV.objects.create(setpoint_address=pva(second_double.name), readback_address=ca_pv.setpoint)
    pva_readback = pva(pva_server.of_type(sim_pva.INT).name)
    PV.objects.filter(setpoint_address=ca_pv.setpoint).update(readback_address=pva_readback)
    return {**addresses, "pva_readback": pva_readback, "ca_readback": ca_pv.setpoint}


@pytest.fixture
def make_monitor(redis_db, pva_server):
    """A monitor whose pvAccess subscriptions reach the simulated server (contexts of its own)."""
    contexts = pva_bulk.make_contexts(pva_server.conf, 2)
    monitors = []

    def make():
        monitor = Monitor(
            MonitorSettings(shard=live.Shard(0, 1), owner=f"pva-{len(monitors)}", **FAST),
            channels=lambda: channels.ChannelSet(pva=lambda: pva_bulk.ChannelSet(contexts)),
        )
        monitors.append(monitor)
        return monitor

    yield make
    for monitor in monitors:
        monitor.shutdown()
    for context in contexts:
        context.close()


def run_until(monitor, condition, timeout=10.0, what="the condition"):
    def stepped() -> bool:
        if not monitor.step():
            pytest.fail("the monitor lost its lease")
        return condition()

    eventually(stepped, timeout, interval=0, what=f"{what}, stepping the monitor")


def server(pva_server) -> str:
    """The simulated pvAccess server as the client report names it ("host:port")."""
    return f"127.0.0.1:{pva_server.port}"


def live_values(addresses, connected=True) -> bool:
    values = live.read_values(sorted(addresses))
    return all(v is not None and v.connected == connected for v in values.values())


def field_value(served: dict):
    """What Redis holds of a p4p value read back by the independent client (pva_server.pvget)."""
    value = served["value"]
    if isinstance(value, dict) and "index" in value:
        return value["index"]
    if isinstance(value, bool):
        return int(value)
    return value


@pytest.mark.ioc
def test_every_pvaccess_type_reaches_redis_beside_channel_access(mixed_registry, make_monitor, pva_server, sim_ioc):
    monitor = make_monitor()
    assert monitor.try_lead()
    every = set(monitor.addresses)
    assert set(mixed_registry.values()) <= every
    run_until(monitor, lambda: live_values(every), timeout=15, what="every address of both protocols in Redis")
    run_until(monitor, lambda: monitor.heartbeat()["synced"], what="the heartbeat's synced")

    pvs = {kind: mixed_registry[kind] for kind in sim_pva.TYPES}
    served = pva_server.pvget(name_of(address) for address in pvs.values())
    values, metas = live.read_values(list(pvs.values())), live.read_metadata(list(pvs.values()))
    for kind, address in pvs.items():
        value, meta = values[address], metas[address]
        assert (value.kind, meta.kind) == (sim_pva.KINDS[kind], sim_pva.KINDS[kind]), kind
        # Named on connecting if a heartbeat had already seen the server, else the aggregate name.
        assert meta.host in (channels.PVA_HOST, server(pva_server)), kind
        if kind == sim_pva.TABLE:
            table = json.loads(value.value)
            assert table["id"].startswith("epics:nt/NTTable")
            assert table["value"]["value"] == served[name_of(address)]["value"]
        else:
            assert value.value == pytest.approx(field_value(served[name_of(address)])), kind
        assert value.timestamp > 0 and value.connected
    double = pva_server.of_type(sim_pva.DOUBLE)
    meta = metas[pvs[sim_pva.DOUBLE]]
    assert (meta.units, meta.precision, meta.lower_limit, meta.upper_limit) == (
        double.units,
        double.precision,
        double.low,
        double.high,
    )
    assert metas[pvs[sim_pva.ENUM]].enum_labels == list(sim_pva.ENUM_CHOICES)
    assert metas[pvs[sim_pva.DOUBLE_ARRAY]].count == sim_pva.ARRAY_LENGTH

    # Channel Access beside it, and the heartbeat counts both protocols' servers.
    ca = sim_ioc.of_kind(sim.ENUM)[0]
    assert live.read_values([ca.setpoint])[ca.setpoint].kind == "enum"
    beat = monitor.heartbeat()
    hosts = beat["hosts"]
    pva_count = sum(1 for address in every if address.startswith("pva://"))
    # Each protocol's channels under their own server: the pvAccess server's address, as p4p's
    # client report names it, beside the Channel Access IOC's.
    assert hosts[server(pva_server)] == [pva_count, 0] and channels.PVA_HOST not in hosts
    assert sum(connected for connected, _ in hosts.values()) == len(every)
    assert beat["protocols"] == {
        "ca": {"addresses": len(every) - pva_count, "connected": len(every) - pva_count, "never_connected": 0},
        "pva": {"addresses": pva_count, "connected": pva_count, "never_connected": 0},
    }


@pytest.mark.ioc
def test_a_put_by_another_client_shows_up_in_redis(mixed_registry, make_monitor, pva_server):
    monitor = make_monitor()
    monitor.try_lead()
    double, enum = mixed_registry[sim_pva.DOUBLE], mixed_registry[sim_pva.ENUM]
    run_until(monitor, lambda: live_values([double, enum]))
    before, enum_before = (live.read_values([double, enum])[a].value for a in (double, enum))
    notices = []  # change notices naming the double
    client = live.redis_client()
    pubsub = client.pubsub()
    pubsub.subscribe(live.changes_channel(client))
    try:
        pva_server.pvput({name_of(double): {"value": before + 1.5}, name_of(enum): {"value.index": 3}})
        run_until(
            monitor,
            lambda: (
                live.read_values([double])[double].value == pytest.approx(before + 1.5)
                and live.read_values([enum])[enum].value == 3
            ),
            timeout=5,
            what="the independent client's puts in Redis",
        )

        def noticed() -> bool:
            message = pubsub.get_message(timeout=0.2)
            if message and message["type"] == "message" and double in msgpack.unpackb(message["data"]):
                notices.append(message)
            return bool(notices)

        eventually(noticed, 5, interval=0, what="a change notice naming the pvAccess address")
    finally:
        pubsub.close()
        pva_server.pvput({name_of(double): {"value": before}, name_of(enum): {"value.index": enum_before}})


@pytest.mark.ioc
def test_a_stopped_pva_server_shows_disconnected_and_comes_back(mixed_registry, make_monitor, restartable_pva_server):
    monitor = make_monitor()
    monitor.try_lead()
    every = set(monitor.addresses)
    pvas = {address for address in every if address.startswith("pva://")}
    run_until(monitor, lambda: live_values(every), timeout=15, what="every address in Redis")
    named = server(restartable_pva_server)
    run_until(monitor, lambda: monitor.heartbeat()["hosts"].get(named) == [len(pvas), 0], what="counted per server")
    restartable_pva_server.stop()
    run_until(monitor, lambda: live_values(pvas, connected=False), timeout=5, what="pvAccess values disconnected")
    assert live_values(every - pvas)  # Channel Access untouched
    beat = monitor.heartbeat()
    # The server that went away counts as that server disconnected (health lists it as degraded).
    assert beat["hosts"][server(restartable_pva_server)] == [0, len(pvas)] and beat["disconnected"] == len(pvas)
    assert beat["never_connected"] == []  # a server that answered and went away, not a typo
    assert beat["protocols"]["pva"] == {"addresses": len(pvas), "connected": 0, "never_connected": 0}
    # The values keep what they last held, marked disconnected.
    table = live.read_values([mixed_registry[sim_pva.TABLE]])[mixed_registry[sim_pva.TABLE]]
    assert table.kind == "structure" and table.value

    restartable_pva_server.start()
    started = time.monotonic()
    run_until(monitor, lambda: live_values(pvas), timeout=30, what="pvAccess values back without a monitor restart")
    print(f"pvAccess values back {time.monotonic() - started:.1f} s after the server restarted")
    run_until(monitor, lambda: monitor.heartbeat()["hosts"][server(restartable_pva_server)] == [len(pvas), 0])
