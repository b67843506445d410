"""The bulk Channel Access layer: buffer decoding (pure) and a real IOC (marker `ioc`)."""

import struct
import time

import pytest

from pvs import sim
from pvs.epics_io import EPICS_EPOCH_OFFSET, ChannelSet, decode_time_buffer

DBR_STRING, DBR_SHORT, DBR_FLOAT, DBR_ENUM, DBR_CHAR, DBR_LONG, DBR_DOUBLE = range(7)


def header(status=0, severity=0, secs=1000, nsec=500_000_000):
    return struct.pack("<hhII", status, severity, secs, nsec)


def test_decodes_a_double_with_alarm_and_timestamp():
    raw = header(status=3, severity=2) + b"\0" * 4 + struct.pack("<d", 1.25)
    kind, value, status, severity, stamp = decode_time_buffer(DBR_DOUBLE, 1, raw)
    assert (kind, value, status, severity) == ("float", 1.25, 3, 2)
    assert stamp == pytest.approx(EPICS_EPOCH_OFFSET + 1000.5)


def test_decodes_long_enum_and_string():
    assert decode_time_buffer(DBR_LONG, 1, header() + struct.pack("<i", -7))[:2] == ("int", -7)
    assert decode_time_buffer(DBR_ENUM, 1, header() + b"\0\0" + struct.pack("<H", 2))[:2] == ("enum", 2)
    raw = header() + b"hello".ljust(40, b"\0")
    assert decode_time_buffer(DBR_STRING, 1, raw)[:2] == ("string", "hello")


def test_decodes_arrays_to_lists():
    raw = header() + b"\0" * 4 + struct.pack("<3d", 1.0, 2.0, 3.5)
    assert decode_time_buffer(DBR_DOUBLE, 3, raw)[:2] == ("float_array", [1.0, 2.0, 3.5])
    raw = header() + b"\0" * 2 + struct.pack("<3h", 1, -2, 3)
    assert decode_time_buffer(DBR_SHORT, 3, raw)[:2] == ("int_array", [1, -2, 3])


def test_a_never_processed_record_has_no_timestamp():
    raw = header(secs=0, nsec=0) + b"\0" * 4 + struct.pack("<d", 0.0)
    assert decode_time_buffer(DBR_DOUBLE, 1, raw)[4] == 0.0


def poll_until(channels, condition, timeout=10.0):
    """Poll until `condition(collected)` holds; returns everything collected."""
    collected = {"readings": {}, "metadata": {}, "connected": set(), "disconnected": set()}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = channels.poll(0.05)
        collected["readings"].update((r.address, r) for r in result.readings)
        collected["metadata"].update((m.address, m) for m in result.metadata)
        collected["connected"] |= set(result.connected)
        collected["disconnected"] |= set(result.disconnected)
        if condition(collected):
            return collected
    pytest.fail(f"condition not met within {timeout} s")


@pytest.fixture
def channels():
    channel_set = ChannelSet()
    yield channel_set
    channel_set.close()


@pytest.mark.ioc
def test_every_served_address_connects_with_value_and_metadata(sim_ioc, channels):
    addresses = {a for pv in sim_ioc.pvs for a in (pv.setpoint, pv.readback, pv.config) if a}
    channels.add(addresses)
    got = poll_until(channels, lambda c: c["readings"].keys() >= addresses and c["metadata"].keys() >= addresses)
    enum = sim_ioc.of_kind(sim.ENUM)[0]
    assert got["metadata"][enum.setpoint].enum_labels == list(enum.labels)
    assert got["readings"][enum.setpoint].value == enum.value
    pair = sim_ioc.of_kind(sim.PAIR)[0]
    assert got["readings"][pair.setpoint].value == pytest.approx(pair.value)
    assert got["metadata"][pair.setpoint].units == pair.egu
    wave = sim_ioc.of_kind(sim.WAVEFORM)[0]
    assert got["readings"][wave.setpoint].value == pytest.approx(list(wave.value))
    assert channels.connection_counts_by_host() == {f"localhost:{sim_ioc.port}": (len(addresses), 0)}


@pytest.mark.ioc
def test_write_protected_channel_reports_no_write_access(sim_ioc, channels):
    protected = sim_ioc.of_kind(sim.PROTECTED)[0].setpoint
    channels.add([protected])
    got = poll_until(channels, lambda c: protected in c["metadata"] and not c["metadata"][protected].write_access)
    assert got["metadata"][protected].read_access


@pytest.mark.ioc
def test_unknown_address_never_connects(sim_ioc, channels):
    channels.add(["SIM:NO:SUCH:PV"])
    got = poll_until(channels, lambda c: True, timeout=0.5)
    assert not got["connected"] and not channels.is_connected("SIM:NO:SUCH:PV")


@pytest.mark.ioc
def test_stopped_ioc_disconnects_and_restarted_ioc_reconnects(restartable_sim_ioc, channels):
    address = restartable_sim_ioc.of_kind(sim.PAIR)[0].setpoint
    channels.add([address])
    poll_until(channels, lambda c: address in c["readings"])
    restartable_sim_ioc.stop()
    poll_until(channels, lambda c: address in c["disconnected"], timeout=5)
    restartable_sim_ioc.start()
    started = time.monotonic()
    got = poll_until(channels, lambda c: address in c["connected"] and address in c["readings"], timeout=15)
    assert got["readings"][address].value == pytest.approx(restartable_sim_ioc.of_kind(sim.PAIR)[0].value)
    print(f"reconnected {time.monotonic() - started:.2f} s after the IOC was ready")


@pytest.mark.ioc
def test_removed_channel_delivers_nothing_more(sim_ioc, channels):
    changing = sim_ioc.of_kind(sim.CHANGING)[0].setpoint
    channels.add([changing])
    poll_until(channels, lambda c: changing in c["readings"])
    channels.remove([changing])
    assert changing not in channels
    got = poll_until(channels, lambda c: True, timeout=1.5)
    assert not got["readings"]
