"""The bulk Channel Access layer: buffer decoding and encoding (pure) and a real IOC (marker `ioc`)."""

import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from pvs import sim
from pvs.epics_io import (
    DISCONNECTED,
    EPICS_EPOCH_OFFSET,
    NO_WRITE_ACCESS,
    ChannelAccessError,
    ChannelSet,
    EpicsService,
    PutRequest,
    decode_time_buffer,
    encode_put,
    epics_service,
)
from squirrel_site.testing import eventually

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

    def collect() -> dict:
        result = channels.poll(0.05)
        collected["readings"].update((r.address, r) for r in result.readings)
        collected["metadata"].update((m.address, m) for m in result.metadata)
        collected["connected"] |= set(result.connected)
        collected["disconnected"] |= set(result.disconnected)
        return collected if condition(collected) else None

    return eventually(collect, timeout, interval=0, what="the condition on what the channels delivered")


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


@pytest.mark.ioc
def test_metadata_waits_while_held_and_follows_once_released(sim_ioc, channels):
    addresses = [pv.setpoint for pv in sim_ioc.of_kind(sim.PAIR)[:5]]
    channels.metadata_per_poll = 0
    channels.add(addresses)
    got = poll_until(channels, lambda c: c["readings"].keys() >= set(addresses))
    got["metadata"].update((m.address, m) for m in channels.poll(0.3).metadata)
    assert not got["metadata"]
    channels.metadata_per_poll = 2
    got = poll_until(channels, lambda c: c["metadata"].keys() >= set(addresses))
    assert got["metadata"][addresses[0]].units == sim_ioc.of_kind(sim.PAIR)[0].egu


def test_names_libca_refuses_are_reported_and_the_others_created(channels):
    errors = channels.create(["OK:1", "", "OK:2", "BAD\0NAME", "OK:1"])
    assert errors == {"": "Invalid string", "BAD\0NAME": "a NUL in the name"}
    assert channels.addresses == {"OK:1", "OK:2"}
    with pytest.raises(ChannelAccessError, match="Cannot create a channel for ''"):
        channels.add(["OK:3", ""])
    assert "OK:3" in channels


def test_a_closed_channel_set_refuses_calls():
    channel_set = ChannelSet()
    channel_set.add(["OK:1"])
    channel_set.close()
    assert len(channel_set) == 0
    with pytest.raises(ChannelAccessError, match="closed"):
        channel_set.poll(0.01)
    with pytest.raises(ChannelAccessError, match="closed"):
        channel_set.add(["OK:2"])


# Encoding puts (pure)


def test_encodes_numbers_for_double_and_integer_channels():
    assert encode_put(DBR_FLOAT, 1, 2) == (DBR_DOUBLE, 1, struct.pack("<d", 2.0))
    assert encode_put(DBR_SHORT, 1, 3.0) == (DBR_LONG, 1, struct.pack("<i", 3))
    assert encode_put(DBR_DOUBLE, 5, [1.0, 2.5]) == (DBR_DOUBLE, 2, struct.pack("<2d", 1.0, 2.5))


def test_refuses_values_an_integer_channel_cannot_hold():
    for value in (2.5, "7", 2**40):
        with pytest.raises(ValueError):
            encode_put(DBR_LONG, 1, value)


def test_encodes_enum_index_and_label():
    assert encode_put(DBR_ENUM, 1, 2) == (DBR_ENUM, 1, struct.pack("<H", 2))
    assert encode_put(DBR_ENUM, 1, "On", ["Off", "On"]) == (DBR_ENUM, 1, struct.pack("<H", 1))
    # Labels not known yet: the IOC matches the string.
    assert encode_put(DBR_ENUM, 1, "On") == (DBR_STRING, 1, b"On".ljust(40, b"\0"))
    with pytest.raises(ValueError, match="not one of the labels"):
        encode_put(DBR_ENUM, 1, "Maybe", ["Off", "On"])


def test_encodes_strings_and_refuses_overlong_ones():
    assert encode_put(DBR_STRING, 1, "hi") == (DBR_STRING, 1, b"hi".ljust(40, b"\0"))
    with pytest.raises(ValueError, match="longer than 39 bytes"):
        encode_put(DBR_STRING, 1, "x" * 40)
    with pytest.raises(ValueError):
        encode_put(DBR_STRING, 1, 1.5)


def test_refuses_more_elements_than_the_channel_has():
    with pytest.raises(ValueError, match="3 values for a channel of 2 elements"):
        encode_put(DBR_DOUBLE, 2, [1, 2, 3])
    with pytest.raises(ValueError):
        encode_put(DBR_DOUBLE, 2, [])


# The EPICS service


@pytest.fixture
def service():
    epics = EpicsService()
    yield epics
    epics.close()


@pytest.fixture
def restore_initial_values(sim_ioc, service):
    """Puts the initial value back into every PV a test wrote, for the tests that follow."""
    written: list[sim.SimPV] = []
    yield written
    requests = [
        PutRequest(pv.setpoint, list(pv.value) if pv.kind == sim.WAVEFORM else pv.value, wait=True) for pv in written
    ]
    assert all(result.ok for result in service.put(requests).values())


def test_closed_service_refuses_calls():
    epics = EpicsService()
    epics.close()
    with pytest.raises(ChannelAccessError, match="closed"):
        epics.read(["SIM:ANY"])


def test_process_service_is_one_instance_for_every_thread():
    with ThreadPoolExecutor(4) as pool:
        services = set(pool.map(lambda _: epics_service(), range(8)))
    assert len(services) == 1


@pytest.mark.ioc
def test_reads_every_kind_with_its_value(sim_ioc, service):
    pvs = {
        kind: sim_ioc.of_kind(kind)[-1]
        for kind in (sim.PAIR, sim.READONLY, sim.INT, sim.ENUM, sim.STRING, sim.WAVEFORM)
    }
    results = service.read([pv.setpoint for pv in pvs.values()] + [pvs[sim.PAIR].readback])
    assert all(result.error is None for result in results.values())
    kinds = {kind: (results[pv.setpoint].reading.kind, results[pv.setpoint].reading.value) for kind, pv in pvs.items()}
    assert kinds[sim.PAIR] == ("float", pytest.approx(pvs[sim.PAIR].value))
    assert kinds[sim.READONLY] == ("float", pytest.approx(pvs[sim.READONLY].value))
    assert kinds[sim.INT] == ("int", pvs[sim.INT].value)
    assert kinds[sim.ENUM] == ("enum", pvs[sim.ENUM].value)
    assert kinds[sim.STRING] == ("string", pvs[sim.STRING].value)
    assert kinds[sim.WAVEFORM] == ("float_array", pytest.approx(list(pvs[sim.WAVEFORM].value)))
    readback = results[pvs[sim.PAIR].readback].reading
    assert readback.value == pytest.approx(pvs[sim.PAIR].value, abs=pvs[sim.PAIR].noise * 1.01)
    assert readback.timestamp > 0 and readback.received >= readback.timestamp - 1


@pytest.mark.ioc
def test_puts_of_every_kind_are_seen_by_an_independent_client(sim_ioc, service, restore_initial_values):
    pair, integer, wave = sim_ioc.of_kind(sim.PAIR)[-1], sim_ioc.of_kind(sim.INT)[-1], sim_ioc.of_kind(sim.WAVEFORM)[-1]
    by_index, by_label = sim_ioc.of_kind(sim.ENUM)[-1], sim_ioc.of_kind(sim.ENUM)[-2]
    string = sim_ioc.of_kind(sim.STRING)[-1]
    restore_initial_values.extend([pair, integer, wave, by_index, by_label, string])
    expected = {
        pair.setpoint: pair.value + 1.25,
        integer.setpoint: integer.value + 3,
        by_index.setpoint: (by_index.value + 1) % len(by_index.labels),
        by_label.setpoint: (by_label.value + 1) % len(by_label.labels),
        string.setpoint: "written by a test",
        wave.setpoint: [1.0, 2.0, 3.0],
    }
    requests = [PutRequest(address, value) for address, value in expected.items()]
    requests[3] = PutRequest(by_label.setpoint, by_label.labels[expected[by_label.setpoint]])
    results = service.put(requests)
    assert all(result.ok and not result.completed for result in results.values()), results

    independent = ChannelSet()
    try:
        independent.add(expected)
        got = poll_until(
            independent,
            lambda c: all(
                a in c["readings"] and c["readings"][a].value == pytest.approx(v) for a, v in expected.items()
            ),
            timeout=5,
        )
    finally:
        independent.close()
    assert got["readings"][wave.setpoint].kind == "float_array"


@pytest.mark.ioc
def test_put_with_completion_returns_once_the_readback_followed(sim_ioc, service, restore_initial_values):
    pair = sim_ioc.of_kind(sim.PAIR)[-2]
    restore_initial_values.append(pair)
    target = pair.value + 2.5
    started = time.monotonic()
    result = service.put([PutRequest(pair.setpoint, target, wait=True)])[pair.setpoint]
    assert (result.ok, result.completed, result.error) == (True, True, None)
    # The pair's readback is processed after its delay; completion waits for that.
    assert time.monotonic() - started >= pair.delay * 0.9
    readback = service.read([pair.readback])[pair.readback].reading
    assert readback.value == pytest.approx(target, abs=pair.noise * 1.01)


@pytest.mark.ioc
def test_write_protected_setpoint_is_reported_and_not_written(sim_ioc, service):
    protected = sim_ioc.of_kind(sim.PROTECTED)[-1]
    results = service.put([PutRequest(protected.setpoint, protected.value + 1, wait=True)])
    assert results[protected.setpoint].error == NO_WRITE_ACCESS and not results[protected.setpoint].ok
    assert service.read([protected.setpoint])[protected.setpoint].reading.value == pytest.approx(protected.value)
    assert service.metadata([protected.setpoint])[protected.setpoint].write_access is False


@pytest.mark.ioc
def test_a_value_the_channel_cannot_take_fails_without_a_put(sim_ioc, service):
    integer = sim_ioc.of_kind(sim.INT)[-2]
    result = service.put([PutRequest(integer.setpoint, 2.5)])[integer.setpoint]
    assert not result.ok and result.error.startswith("failed: ")
    assert service.read([integer.setpoint])[integer.setpoint].reading.value == integer.value


@pytest.mark.ioc
def test_unknown_address_is_disconnected_after_about_the_timeout(sim_ioc, service):
    started = time.monotonic()
    read = service.read(["SIM:NO:SUCH:PV"], timeout=0.5)["SIM:NO:SUCH:PV"]
    put = service.put([PutRequest("SIM:NO:SUCH:PV", 1.0)], timeout=0.5)["SIM:NO:SUCH:PV"]
    elapsed = time.monotonic() - started
    assert (read.reading, read.error) == (None, DISCONNECTED)
    assert (put.ok, put.error) == (False, DISCONNECTED)
    assert 1.0 <= elapsed < 2.0


@pytest.mark.ioc
def test_many_dead_addresses_cost_one_timeout_not_one_each(sim_ioc, service):
    good = [pv.setpoint for pv in sim_ioc.pvs[:50]]
    dead = [f"SIM:DEAD:{i}" for i in range(50)]
    timeout = 1.0
    started = time.monotonic()
    results = service.read(dead + good, timeout=timeout)
    assert time.monotonic() - started < 2 * timeout
    assert all(results[address].error == DISCONNECTED for address in dead)
    assert all(results[address].reading is not None for address in good)
    started = time.monotonic()
    puts = service.put([PutRequest(address, 1.0, wait=True) for address in dead], timeout=timeout)
    assert time.monotonic() - started < 2 * timeout
    assert {result.error for result in puts.values()} == {DISCONNECTED}


@pytest.mark.ioc
def test_two_threads_use_the_service_at_once(sim_ioc, service, restore_initial_values):
    integers = sim_ioc.of_kind(sim.INT)[-6:-3]
    restore_initial_values.extend(integers)
    everything = [pv.setpoint for pv in sim_ioc.pvs]
    barrier = threading.Barrier(2)

    def read_everything(_):
        barrier.wait()
        return [service.read(everything, timeout=5) for _ in range(5)]

    def put_integers(_):
        barrier.wait()
        return [service.put([PutRequest(pv.setpoint, pv.value + n, wait=True) for pv in integers]) for n in range(5)]

    with ThreadPoolExecutor(2) as pool:
        reads, puts = pool.map(lambda job: job(None), (read_everything, put_integers))
    assert all(result.reading is not None for batch in reads for result in batch.values())
    assert all(result.completed for batch in puts for result in batch.values())
    final = service.read([pv.setpoint for pv in integers])
    assert [final[pv.setpoint].reading.value for pv in integers] == [pv.value + 4 for pv in integers]


@pytest.mark.ioc
def test_metadata_arrives_once_per_connection(sim_ioc, channels):
    addresses = [pv.setpoint for pv in sim_ioc.of_kind(sim.PAIR)[:20]]
    channels.add(addresses)
    counts = {address: 0 for address in addresses}
    for _ in range(60):  # 3 s: each poll processes events for its whole timeout (ca_pend_event)
        for meta in channels.poll(0.05).metadata:
            counts[meta.address] += 1
    assert set(counts.values()) == {1}
