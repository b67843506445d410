"""The monitor against the simulated IOC and real Redis (marker `ioc` where it needs the IOC)."""

import os
import signal
import threading
import time

import epics
import pytest
from django.core.management import CommandError, call_command

from monitor import live
from monitor.monitor import Monitor, MonitorSettings, registry_addresses
from pvs import sim
from pvs.epics_io import METADATA_PER_POLL
from pvs.models import PV
from squirrel_site import epics_values
from squirrel_site.epics_values import Value
from squirrel_site.testing import eventually
from squirrel_site.testing.fixtures import received
from squirrel_site.testing.values import make_meta

# A long lease: these tests block in IOC restarts without stepping the monitor; lease expiry
# has its own tests (fencing, standby takeover).
FAST = dict(flush_interval=0.05, registry_interval=0.2, heartbeat_interval=0.2, lease_ttl=30.0, connect_grace=1.0)


@pytest.fixture
def make_monitor(redis_db):
    monitors = []

    def make(shard="0/1", owner=None, **overrides):
        options = {**FAST, **overrides}
        monitor = Monitor(
            MonitorSettings(shard=live.Shard.parse(shard), owner=owner or f"test-{len(monitors)}", **options)
        )
        monitors.append(monitor)
        return monitor

    yield make
    for monitor in monitors:
        monitor.shutdown()


def run_until(monitor, condition, timeout=10.0):
    """Step a leading monitor until `condition()` holds; fail after `timeout` seconds."""

    def stepped() -> bool:
        if not monitor.step():
            pytest.fail("the monitor lost its lease")
        return condition()

    eventually(stepped, timeout, interval=0, what="the condition, stepping the monitor")


def all_live(addresses, connected=True):
    values = live.read_values(sorted(addresses))
    return all(v is not None and v.connected == connected for v in values.values())


def test_two_shards_split_the_registry_exactly(db):
    PV.objects.bulk_create(PV(setpoint_address=f"SIM:S{i}", readback_address=f"SIM:S{i}:RB") for i in range(500))
    first, second = registry_addresses(live.Shard(0, 2)).keys(), registry_addresses(live.Shard(1, 2)).keys()
    assert not first & second
    assert first | second == registry_addresses(live.Shard(0, 1)).keys()
    assert len(first | second) == 1000 and 300 < len(first) < 700


def test_setpoints_are_subscribed_before_readbacks(db):
    PV.objects.bulk_create(PV(setpoint_address=f"SIM:S{i}", readback_address=f"SIM:S{i}:RB") for i in range(10))
    order = list(registry_addresses(live.Shard(0, 1)))
    assert all(not a.endswith(":RB") for a in order[:10]) and all(a.endswith(":RB") for a in order[10:])


@pytest.mark.ioc
def test_start_up_subscribes_setpoints_first_then_the_rest(sim_ioc_addresses, make_monitor, sim_ioc):
    monitor = make_monitor(stage_minimum=10, stage_timeout=30.0)
    assert monitor.try_lead()
    setpoints = {pv.setpoint for pv in sim_ioc.pvs}
    assert monitor.channels.addresses == setpoints  # readbacks and config addresses wait
    monitor.step()
    # Until every setpoint has its first value, no metadata request competes with them.
    assert monitor.channels.metadata_per_poll == 0
    run_until(monitor, lambda: monitor.channels.addresses == sim_ioc_addresses)
    assert set(monitor._latest) >= setpoints  # the second stage followed the setpoints' values
    run_until(monitor, lambda: all_live(sim_ioc_addresses))
    assert monitor.channels.metadata_per_poll == METADATA_PER_POLL


def test_start_up_second_stage_does_not_wait_for_a_dead_ioc(transactional_db, make_monitor, redis_db):
    PV.objects.bulk_create(PV(setpoint_address=f"NOIOC:S{i}", readback_address=f"NOIOC:S{i}:RB") for i in range(20))
    monitor = make_monitor(stage_minimum=10, stage_timeout=0.3)
    assert monitor.try_lead()
    assert len(monitor.channels) == 20
    run_until(monitor, lambda: len(monitor.channels) == 40, timeout=3)
    # A PV deleted while its readback still waited is never subscribed.
    PV.objects.filter(setpoint_address="NOIOC:S0").delete()
    monitor.sync_registry()
    assert "NOIOC:S0:RB" not in monitor.channels and "NOIOC:S0" not in monitor.channels


def test_a_registry_change_during_start_up_drops_deferred_addresses(transactional_db, make_monitor, redis_db):
    PV.objects.bulk_create(PV(setpoint_address=f"NOIOC:S{i}", readback_address=f"NOIOC:S{i}:RB") for i in range(20))
    monitor = make_monitor(stage_minimum=10, stage_timeout=30.0)
    assert monitor.try_lead()
    PV.objects.filter(setpoint_address="NOIOC:S0").delete()
    monitor.sync_registry()
    monitor._deferred_until = 0.0
    monitor.add_deferred()
    assert len(monitor.channels) == 38 and "NOIOC:S0:RB" not in monitor.channels


@pytest.mark.ioc
def test_every_address_arrives_in_redis_with_its_value(sim_ioc_addresses, make_monitor, sim_ioc):
    monitor = make_monitor()
    assert monitor.try_lead()
    assert monitor.heartbeat()["synced"] is False  # no value yet: the cache is not this leader's
    run_until(monitor, lambda: all_live(sim_ioc_addresses))
    run_until(monitor, lambda: monitor.heartbeat()["synced"])
    enum = sim_ioc.of_kind(sim.ENUM)[0]
    value = live.read_values([enum.setpoint])[enum.setpoint]
    assert (value.kind, value.value) == ("enum", enum.value)
    assert live.read_metadata([enum.setpoint])[enum.setpoint].enum_labels == list(enum.labels)


@pytest.mark.ioc
def test_a_change_on_the_ioc_follows_in_redis(sim_ioc_addresses, make_monitor, sim_ioc):
    monitor = make_monitor()
    monitor.try_lead()
    pv = sim_ioc.of_kind(sim.INT)[0]
    run_until(monitor, lambda: all_live([pv.setpoint]))
    target = int(live.read_values([pv.setpoint])[pv.setpoint].value) + 7
    epics.caput(pv.setpoint, target, wait=True, timeout=5)
    run_until(monitor, lambda: live.read_values([pv.setpoint])[pv.setpoint].value == target, timeout=3)


@pytest.mark.ioc
def test_stopped_ioc_shows_disconnected_and_comes_back(sim_ioc_addresses, make_monitor, restartable_sim_ioc):
    monitor = make_monitor()
    monitor.try_lead()
    address = restartable_sim_ioc.of_kind(sim.PAIR)[0].setpoint
    run_until(monitor, lambda: all_live([address]))
    restartable_sim_ioc.stop()
    run_until(monitor, lambda: all_live([address], connected=False), timeout=5)
    assert monitor.heartbeat()["disconnected"] == len(sim_ioc_addresses)
    restartable_sim_ioc.start()
    # libca's disconnect governor searches again every 10 s (pvs/epics_io.py).
    run_until(monitor, lambda: all_live([address]), timeout=15)


@pytest.mark.ioc
def test_registry_changes_are_picked_up_without_restart(sim_ioc_addresses, make_monitor, sim_ioc):
    monitor = make_monitor()
    monitor.try_lead()
    run_until(monitor, lambda: all_live(sim_ioc_addresses))
    removed = PV.objects.filter(readback_address="").first()
    PV.objects.filter(pk=removed.pk).delete()
    added = PV.objects.create(setpoint_address="SIM:NOT:SERVED")
    run_until(monitor, lambda: live.read_values([removed.setpoint_address])[removed.setpoint_address] is None)
    run_until(monitor, lambda: all_live([added.setpoint_address], connected=False), timeout=5)
    assert removed.setpoint_address not in monitor.channels


def test_a_monitor_that_lost_its_lease_cannot_overwrite_the_new_leader(transactional_db, make_monitor, redis_db):
    old, new = make_monitor(owner="old"), make_monitor(owner="new")
    assert old.try_lead() and not new.try_lead()
    redis_db.delete(live.lease_key(old.settings.shard))  # the old leader was paused past its TTL
    assert new.try_lead()
    new._pending = {"SIM:X": Value("SIM:X", "float", 2.0, 0, 0, 1.0, 1.0, True)}
    assert new.flush()
    old._pending = {"SIM:X": Value("SIM:X", "float", 1.0, 0, 0, 1.0, 1.0, True)}
    assert not old.flush()
    assert live.read_values(["SIM:X"])["SIM:X"].value == 2.0


def test_heartbeat_carries_the_leaders_stats(transactional_db, make_monitor):
    monitor = make_monitor(owner="leader-1")
    monitor.try_lead()
    monitor.heartbeat()
    (beat,) = live.read_heartbeats()
    assert beat["owner"] == "leader-1" and beat["addresses"] == 0 and "p95_age_s" in beat


def test_the_heartbeat_tells_an_ioc_gone_from_addresses_no_ioc_ever_answered(transactional_db, make_monitor, redis_db):
    # No server answers any of them; a previous leader saw the first five connect to ioc-b.
    PV.objects.bulk_create(PV(setpoint_address=f"NOIOC:S{i:02d}") for i in range(30))
    old = make_monitor(owner="old")
    assert old.try_lead()
    assert old.writer.write({}, {f"NOIOC:S{i:02d}": make_meta(host="ioc-b:5064") for i in range(5)})
    old.shutdown()
    redis_db.delete(live.lease_key(old.settings.shard))

    new = make_monitor(owner="new", stage_minimum=100)
    assert new.try_lead()
    run_until(new, lambda: len(new._latest) == 30, timeout=5)
    beat = new.heartbeat()

    assert beat["hosts"] == {"ioc-b:5064": [0, 5], "": [0, 25]}
    assert beat["never_connected"] == [f"NOIOC:S{i:02d}" for i in range(5, 25)]  # the first 20 by name


@pytest.mark.ioc
def test_two_shards_together_cover_every_address_once(sim_ioc_addresses, make_monitor):
    first, second = make_monitor("0/2"), make_monitor("1/2")
    assert first.try_lead() and second.try_lead()
    assert not first.addresses & second.addresses
    assert first.addresses | second.addresses == sim_ioc_addresses

    def covered() -> bool:
        if all_live(sim_ioc_addresses):
            return True
        first.step()
        second.step()
        return False

    eventually(covered, 10, interval=0, what="every address live")


def test_bad_shard_is_one_line_error():
    with pytest.raises(CommandError, match="shard"):
        call_command("monitor_pvs", "--shard", "2/2")


def _leader(timeout=15.0):
    def leading():
        return next((beat for beat in live.read_heartbeats() if beat["connected"]), None)

    return eventually(leading, timeout, what="a monitor becoming leader")


@pytest.mark.ioc
def test_standby_takes_over_within_10_s_when_the_leader_dies(sim_ioc_addresses, redis_db, monitor_process):
    for _ in range(2):
        monitor_process("--lease-ttl", "2", "--registry-interval", "0.5")
    leader = _leader()
    leader_pid = int(leader["owner"].rsplit(":", 1)[1])
    os.kill(leader_pid, signal.SIGKILL)
    killed = time.monotonic()
    while time.monotonic() - killed < 10:
        beat = live.read_heartbeats()
        if beat and beat[0]["owner"] != leader["owner"] and beat[0]["connected"] == len(sim_ioc_addresses):
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"no standby took over within 10 s: {live.read_heartbeats()}")
    assert beat[0]["fencing_token"] > leader["fencing_token"]


def test_a_shard_keeps_an_address_another_shards_pv_still_uses(transactional_db, make_monitor, redis_db):
    # Two PVs in different shards share one read-back.
    shard = live.Shard(0, 2)
    mine = next(f"NOIOC:M{i}" for i in range(100) if shard.owns(f"NOIOC:M{i}"))
    theirs = next(f"NOIOC:T{i}" for i in range(100) if not shard.owns(f"NOIOC:T{i}"))
    PV.objects.create(setpoint_address=mine, readback_address="NOIOC:SHARED_RB")
    PV.objects.create(setpoint_address=theirs, readback_address="NOIOC:SHARED_RB")
    monitor = make_monitor(shard="0/2")
    assert monitor.try_lead()
    assert "NOIOC:SHARED_RB" in monitor.addresses
    PV.objects.filter(setpoint_address=mine).delete()
    monitor.sync_registry()
    assert monitor._pending_deletes == {mine}  # not the read-back shard 1 still writes


def test_a_new_leader_deletes_values_a_dead_leader_left_for_deleted_pvs(transactional_db, make_monitor, redis_db):
    PV.objects.create(setpoint_address="NOIOC:KEPT")
    old = time.time() - 60
    for address, received_at in {"NOIOC:GONE": old, "NOIOC:KEPT": old, "NOIOC:JUST_ADDED": time.time()}.items():
        redis_db.hset(
            live.VALUES_KEY,
            address,
            epics_values.pack(Value(address, "float", 1.0, 0, 0, old, received_at, True)),
        )
    redis_db.hset(
        live.META_KEY,
        "NOIOC:META_ONLY",
        live.encode_meta(live.LiveMeta("", 3, None, None, None, "", "float", 1, True, True)),
    )
    monitor = make_monitor()
    assert monitor.try_lead()
    assert monitor._pending_deletes == {"NOIOC:GONE", "NOIOC:META_ONLY"}
    assert monitor.flush()
    assert set(live.cached_addresses(redis_db)) == {"NOIOC:KEPT", "NOIOC:JUST_ADDED"}


def test_run_tells_systemd_it_is_ready_then_pings_the_watchdog(transactional_db, make_monitor, systemd_socket):
    messages, stop = [], threading.Event()

    def listen():  # beside the monitor, which runs in this thread as Channel Access wants
        try:
            eventually(lambda: messages.extend(received(systemd_socket)) or messages.count("WATCHDOG=1") >= 2, 10)
        finally:
            stop.set()

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    make_monitor().run(stop)
    listener.join(1)
    assert messages[0] == "READY=1" and messages.count("WATCHDOG=1") >= 2, messages
