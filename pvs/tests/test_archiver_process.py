"""pvs.archiver against the real `run_sim_archiver` process, recording off the simulated IOC over
Channel Access: what an archiver holds is what the IOC held, before and after a write."""

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

from pvs import archiver, sim
from pvs.archiver import Archived, ArchiverError, NotArchived
from squirrel_site.testing import eventually
from squirrel_site.testing.archiver import recorded
from squirrel_site.testing.ioc import caget_many, caput_many

pytestmark = pytest.mark.ioc


def one_of_each(sim_ioc) -> dict[str, sim.SimPV]:
    kinds = (sim.PAIR, sim.INT, sim.ENUM, sim.STRING, sim.WAVEFORM, sim.STRING_WAVEFORM)
    return {kind: sim_ioc.of_kind(kind)[0] for kind in kinds}


def test_values_at_now_are_what_the_ioc_holds_each_kind_read_as_its_own(sim_ioc, sim_archiver):
    pvs = one_of_each(sim_ioc)
    addresses = [pv.setpoint for pv in pvs.values()]
    got = recorded(addresses)
    got = archiver.values_at(addresses, datetime.now(UTC), kinds={pvs[sim.ENUM].setpoint: "enum"})
    on_ioc = caget_many(addresses)
    kinds = {kind: got[pv.setpoint].value.kind for kind, pv in pvs.items()}
    assert kinds == {
        sim.PAIR: "float",
        sim.INT: "int",
        sim.ENUM: "enum",
        sim.STRING: "string",
        sim.WAVEFORM: "float_array",
        sim.STRING_WAVEFORM: "string_array",
    }
    for address in addresses:
        archived, held = got[address].value.value, on_ioc[address]
        textual = isinstance(held, str) or (isinstance(held, list) and isinstance(held[0], str))
        assert archived == held if textual else archived == pytest.approx(held)
        assert got[address].archiver == "sim" and got[address].age >= 0


def test_a_time_before_a_write_gives_the_value_before_it(sim_ioc, sim_archiver):
    pv = sim_ioc.of_kind(sim.PAIR)[1]
    before = recorded([pv.setpoint])[pv.setpoint].value.value
    time.sleep(0.2)
    between = datetime.now(UTC)
    time.sleep(0.2)
    caput_many({pv.setpoint: before + 1.25})

    def written():
        now = archiver.values_at([pv.setpoint], datetime.now(UTC))[pv.setpoint]
        return now.value.value == pytest.approx(before + 1.25) and now

    eventually(written, 10, what="the write archived")
    then = archiver.values_at([pv.setpoint], between)[pv.setpoint]
    assert then.value.value == pytest.approx(before)
    assert then.age > 0.2
    # Seeded an hour back (made up, within 1% of the first value): an hour ago has an answer.
    hour_ago = archiver.values_at([pv.setpoint], datetime.now(UTC) - timedelta(minutes=55))[pv.setpoint]
    assert isinstance(hour_ago, Archived) and hour_ago.age < 600
    # The history holds both, with the channel's units.
    found = archiver.history(pv.setpoint, datetime.now(UTC) - timedelta(minutes=5), datetime.now(UTC))
    assert found.archiver == "sim" and found.units == pv.egu
    assert [s.value for s in found.samples][-2:] == pytest.approx([before, before + 1.25])
    caput_many({pv.setpoint: before})


def test_a_pv_not_archived_and_a_time_before_every_sample_say_why(sim_ioc, sim_archiver):
    address = sim_ioc.pvs[0].setpoint
    recorded([address])
    got = archiver.values_at([address, "SIM:NOT:ARCHIVED"], datetime.now(UTC))
    assert isinstance(got[address], Archived)
    assert got["SIM:NOT:ARCHIVED"] == NotArchived("SIM:NOT:ARCHIVED", got["SIM:NOT:ARCHIVED"].reason)
    assert got["SIM:NOT:ARCHIVED"].reason.startswith("not archived by any of: sim")
    long_ago = archiver.values_at([address], datetime.now(UTC) - timedelta(days=2))[address]
    assert isinstance(long_ago, NotArchived) and "no sample at or before" in long_ago.reason
    with pytest.raises(LookupError, match="not archived by any of: sim"):
        archiver.history("SIM:NOT:ARCHIVED", datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC))


def test_an_archiver_killed_mid_request_is_a_clear_error(sim_ioc, sim_archiver):
    addresses = sim_archiver.addresses
    recorded(addresses[:5])
    sim_archiver.pause()  # the request is accepted and waits for an answer
    outcome = {}

    def ask():
        try:
            outcome["result"] = archiver.values_at(addresses, datetime.now(UTC), timeout=20)
        except ArchiverError as exc:
            outcome["error"] = exc

    asking = threading.Thread(target=ask)
    started = time.monotonic()
    asking.start()
    time.sleep(0.5)
    sim_archiver.kill()
    asking.join(20)
    assert not asking.is_alive() and time.monotonic() - started < 10
    assert "result" not in outcome
    message = str(outcome["error"])
    assert message.startswith(f"No archiver answered for {len(addresses)} PVs (sim: ")
    # Afterwards nothing listens: refused at once, said the same way.
    with pytest.raises(ArchiverError, match="sim: ConnectionRefusedError"):
        archiver.values_at(addresses[:1], datetime.now(UTC))


def test_a_paused_archiver_times_out_within_the_timeout(sim_ioc, sim_archiver):
    recorded(sim_archiver.addresses[:1])
    sim_archiver.pause()
    started = time.monotonic()
    with pytest.raises(ArchiverError, match=r"sim: no answer within"):
        archiver.values_at(sim_archiver.addresses[:1], datetime.now(UTC), timeout=1.5)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("query", "body", "status"),
    [
        ("at=yesterday", b'["A"]', 400),
        ("at=2026-01-01T00:00:00", b'["A"]', 400),  # no offset: which time would it be?
        ("at=2026-01-01T00:00:00Z", b'{"A": 1}', 400),
        ("at=2026-01-01T00:00:00Z", b'["A", 1]', 400),
        ("at=2026-01-01T00:00:00Z", b"[" * 100_000, 400),
        ("at=2026-01-01T00:00:00Z%00", b'["A"]', 400),
    ],
)
def test_the_simulated_archiver_refuses_hostile_requests(sim_archiver, query, body, status):
    answer = requests.post(f"{sim_archiver.url}/retrieval/data/getDataAtTime?{query}", data=body, timeout=5)
    assert answer.status_code == status, answer.text
    assert requests.get(f"{sim_archiver.url}/retrieval/data/other", timeout=5).status_code == 404


def test_pvaccess_addresses_are_recorded_and_asked_with_their_prefix(pva_server, tmp_path, monkeypatch):
    from django.conf import settings

    from pvs import sim_pva
    from squirrel_site.testing.archiver import PORT_OFFSET, SimArchiver
    from squirrel_site.testing.pva import plain_value
    from squirrel_site.testing.services import Ports
    from squirrel_site.testing.workers import port_base

    served = {kind: f"pva://{pva_server.of_type(kind).name}" for kind in sim_pva.TYPES}
    port = Ports(port_base() + PORT_OFFSET).take()
    process = SimArchiver(tmp_path, list(served.values()), port, env=pva_server.conf)
    process.start()
    monkeypatch.setattr(settings, "ARCHIVERS", [("sim", process.url)])
    try:
        scalars = [address for kind, address in served.items() if kind != sim_pva.TABLE]
        recorded(scalars)
        kinds = {served[kind]: sim_pva.KINDS[kind] for kind in sim_pva.TYPES}
        got = archiver.values_at(list(served.values()), datetime.now(UTC), kinds=kinds)
        on_server = pva_server.pvget([name.removeprefix("pva://") for name in scalars])
        for kind in sim_pva.TYPES:
            result = got[served[kind]]
            if kind == sim_pva.TABLE:  # a structure: the appliance archives none
                assert isinstance(result, NotArchived)
                continue
            assert result.value.kind == sim_pva.KINDS[kind], kind
            held = plain_value(kind, on_server[served[kind].removeprefix("pva://")])
            assert result.value.value == (pytest.approx(held) if isinstance(held, float) else held), kind
    finally:
        process.stop()
