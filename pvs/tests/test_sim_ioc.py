"""The simulated IOC served over Channel Access, read and written by an independent CA client."""

import subprocess
import sys
import time

import epics
import pytest

from pvs import sim
from squirrel_site.testing import eventually

pytestmark = pytest.mark.ioc

FOLLOW_TIMEOUT = 5.0


def read(address, **kwargs):
    """A fresh read from the IOC (pyepics would otherwise answer from its monitor cache)."""
    value = epics.caget(address, use_monitor=False, timeout=5.0, **kwargs)
    assert value is not None, f"no value for {address}"
    return value


def wait_for_readback(pv, target):
    """Seconds until `pv`'s readback is within tolerance of `target`; fails after FOLLOW_TIMEOUT."""
    start = time.monotonic()
    while time.monotonic() - start < FOLLOW_TIMEOUT:
        if abs(read(pv.readback) - target) <= pv.abs_tolerance:
            return time.monotonic() - start
        time.sleep(0.02)
    pytest.fail(f"{pv.readback} = {read(pv.readback)} did not follow {target} within {FOLLOW_TIMEOUT} s")


def test_float_setpoint_and_readback_read_initial_values(sim_ioc):
    pv = sim_ioc.of_kind(sim.PAIR)[0]
    assert read(pv.setpoint) == pytest.approx(pv.value)
    assert abs(read(pv.readback) - pv.value) <= pv.noise


def test_read_only_pv_reads_initial_value(sim_ioc):
    pv = sim_ioc.of_kind(sim.READONLY)[0]
    assert read(pv.setpoint) == pytest.approx(pv.value)


def test_int_pv_reads_initial_value(sim_ioc):
    pv = sim_ioc.of_kind(sim.INT)[0]
    value = read(pv.setpoint)
    assert isinstance(value, int)
    assert value == pv.value


def test_enum_pv_reads_index_and_label(sim_ioc):
    pv = next(pv for pv in sim_ioc.of_kind(sim.ENUM) if pv.value > 0)
    assert read(pv.setpoint) == pv.value
    assert read(pv.setpoint, as_string=True) == pv.labels[pv.value]


def test_string_pv_reads_initial_value(sim_ioc):
    pv = sim_ioc.of_kind(sim.STRING)[0]
    assert read(pv.setpoint) == pv.value


def test_waveform_reads_all_initial_values(sim_ioc):
    pv = sim_ioc.of_kind(sim.WAVEFORM)[0]
    values = read(pv.setpoint)
    assert len(values) == len(pv.value) >= 100
    assert list(values) == pytest.approx(pv.value)


def test_config_address_reads_calibration(sim_ioc):
    pv = next(pv for pv in sim_ioc.pvs if pv.config)
    assert read(pv.config) == 1.0


def test_readback_follows_written_setpoint_after_its_delay(sim_ioc):
    pv = sim_ioc.of_kind(sim.PAIR)[1]
    target = pv.value + 100 * pv.abs_tolerance
    start = time.monotonic()
    assert epics.caput(pv.setpoint, target) == 1
    followed = wait_for_readback(pv, target)
    assert time.monotonic() - start >= pv.delay - 0.01
    assert followed < FOLLOW_TIMEOUT
    assert read(pv.setpoint) == pytest.approx(target)


def test_readback_settles_on_last_of_quick_puts(sim_ioc):
    pv = sim_ioc.of_kind(sim.PAIR)[2]
    first, last = pv.value + 50 * pv.abs_tolerance, pv.value - 50 * pv.abs_tolerance
    epics.caput(pv.setpoint, first)
    epics.caput(pv.setpoint, last)  # arrives while the first put's delay is pending
    wait_for_readback(pv, last)
    time.sleep(pv.delay + 0.2)
    assert abs(read(pv.readback) - last) <= pv.abs_tolerance


def test_put_with_completion_returns_after_readback_followed(sim_ioc):
    pv = sim_ioc.of_kind(sim.PAIR)[3]
    target = pv.value + 100 * pv.abs_tolerance
    assert epics.caput(pv.setpoint, target, wait=True, timeout=FOLLOW_TIMEOUT) == 1
    assert abs(read(pv.readback) - target) <= pv.abs_tolerance


def test_write_to_protected_pv_is_denied(sim_ioc):
    pv = sim_ioc.of_kind(sim.PROTECTED)[0]
    assert not pv.read_only  # the registry does not know: a restore meets "no write access"
    chid = epics.ca.create_channel(pv.setpoint)
    assert epics.ca.connect_channel(chid, timeout=5.0)
    assert epics.ca.read_access(chid)
    assert not epics.ca.write_access(chid)
    with pytest.raises(epics.ca.CASeverityException, match="Write access denied"):
        epics.ca.put(chid, pv.value + 1.0)
    assert read(pv.setpoint) == pytest.approx(pv.value)


def test_writable_setpoint_grants_write_access(sim_ioc):
    chid = epics.ca.create_channel(sim_ioc.of_kind(sim.PAIR)[0].setpoint)
    assert epics.ca.connect_channel(chid, timeout=5.0)
    assert epics.ca.write_access(chid)


def test_changing_pvs_change_at_the_change_rate(sim_ioc):
    pvs = sim_ioc.of_kind(sim.CHANGING)
    before = [read(pv.setpoint) for pv in pvs]
    time.sleep(2.5 / sim_ioc.change_rate)
    after = [read(pv.setpoint) for pv in pvs]
    assert all(a != b for a, b in zip(before, after, strict=True))
    assert all(abs(a - pv.value) <= pv.noise for a, pv in zip(after, pvs, strict=True))


def test_stops_cleanly_and_restarts_with_initial_values(restartable_sim_ioc):
    ioc = restartable_sim_ioc
    pv = ioc.of_kind(sim.INT)[1]
    assert epics.caput(pv.setpoint, pv.value + 1, wait=True) == 1
    assert read(pv.setpoint) == pv.value + 1

    chid = epics.ca.create_channel(pv.setpoint)
    assert ioc.stop() == 0
    assert "Simulated IOC stopped" in ioc.output()
    assert not ioc.ready_file.exists()

    def disconnected() -> bool:
        epics.ca.poll(0.05)
        return not epics.ca.isConnected(chid)

    eventually(disconnected, FOLLOW_TIMEOUT, interval=0, what="the channel disconnecting")

    ioc.start()
    # A fresh client: this process's channel may wait for libca's 10 s disconnect governor, and
    # shares its CA context with the project's CA layer when other tests ran first.
    fresh = subprocess.run(
        [sys.executable, "-c", "import epics, sys; print(epics.caget(sys.argv[1], timeout=10))", pv.setpoint],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert fresh.stdout.strip().splitlines()[-1] == str(pv.value), fresh.stderr


def test_the_alarm_pvs_are_in_alarm_and_the_offline_one_is_not_served(sim_ioc):
    severities = {}
    for pv in sim_ioc.alarm_pvs:
        channel = epics.PV(pv.setpoint, form="time")
        if pv.kind == sim.OFFLINE:
            assert not channel.wait_for_connection(1.0), pv.setpoint
        else:
            assert channel.get(timeout=5.0, use_monitor=False) == pytest.approx(pv.value)
            severities[pv.description] = channel.severity
        channel.disconnect()
    assert sorted(severities.values()) == [1, 2, 3]  # MINOR, MAJOR, INVALID
