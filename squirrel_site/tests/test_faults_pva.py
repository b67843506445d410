"""A pvAccess server killed mid-restore, and the monitor across its death and restart.

The real processes (squirrel_site.testing: web, worker, monitor, the session's simulated Channel
Access IOC) and a simulated pvAccess server of the test's own (run_sim_pva, whose puts complete
PUT_DELAY s after they are applied, so that puts are in flight when it is killed). A restore of a
mixed selection (Channel Access setpoints of every stage and pvAccess PVs of every writable
type) is confirmed, the pvAccess server is SIGKILLed while its puts wait for completion, and the
test checks what the operator is told (the restore and its items through the API, the health
report), what the IOCs hold (pyepics and p4p's own client, each in a process of its own), and
that everything recovers by itself once the server is back: the monitor (never restarted)
marks the pvAccess values disconnected, then fresh again, and a new restore of the same snapshot
writes what the lost one could not (docs/restore.md: an ended restore is not resumed; the
operator restores again). Measured times are printed (run with -s).
"""

import signal
import time

import pytest

from monitor import live
from pvs import sim_pva
from squirrel_site.testing import eventually
from squirrel_site.testing.fixtures import FAULT_IOC_PVS

pytestmark = [pytest.mark.fault, pytest.mark.worker, pytest.mark.ioc]

PVA_PVS = 40  # the test's pvAccess server: sim_pva's first 40 (every type)
PUT_DELAY = 3.0  # s from a put's arrival at the pvAccess server to its completion (< the 5 s put timeout)
CA_PER_STAGE = 3  # Channel Access setpoint/readback pairs of each restore stage
MOVE = 1.5
WRITABLE = (sim_pva.DOUBLE, sim_pva.INT, sim_pva.ENUM, sim_pva.DOUBLE_ARRAY, sim_pva.STRING)
RECOVERY = 30.0  # s within which the monitor has every pvAccess value back


def ca_addresses() -> list[str]:
    from pvs import sim

    pairs = sim.generate(FAULT_IOC_PVS).of_kind(sim.PAIR)
    return [pv.setpoint for stage in range(4) for pv in [p for p in pairs if p.restore_stage == stage][:CA_PER_STAGE]]


def pva_pvs() -> dict[str, sim_pva.SimPV]:
    """{pva:// address: the simulated PV} of the first PV of each writable type."""
    served = sim_pva.generate(PVA_PVS)
    return {f"pva://{pv.name}": pv for pv in (next(p for p in served if p.type == kind) for kind in WRITABLE)}


def moved(pv: sim_pva.SimPV, value, times: int = 1):
    """`value` of `pv`'s type moved `times` steps away."""
    if pv.type == sim_pva.DOUBLE:
        return round(value + MOVE * times, 3)
    if pv.type == sim_pva.INT:
        return value + 2 * times
    if pv.type == sim_pva.ENUM:
        return (value + times) % len(sim_pva.ENUM_CHOICES)
    if pv.type == sim_pva.STRING:
        return f"{value} +{times}"
    return [round(x + MOVE * times, 4) for x in value]


def field(pv: sim_pva.SimPV, value) -> dict:
    return {"value.index": value} if pv.type == sim_pva.ENUM else {"value": value}


def plain(pv: sim_pva.SimPV, served: dict | None):
    """The plain value (an enum's index) of p4p's answer; None when no server answered."""
    if served is None:
        return None
    return served["value"]["index"] if pv.type == sim_pva.ENUM else served["value"]


def same(got: dict, expected: dict) -> bool:
    """Every value as expected (numbers and arrays of numbers to float precision)."""
    return got.keys() == expected.keys() and all(
        got[key] == (value if isinstance(value, str) else pytest.approx(value)) for key, value in expected.items()
    )


def served_values(squirrel, pvs: dict, timeout: float = 5.0) -> dict:
    """{address: the plain value the pvAccess server holds, None if none answered} (p4p's own client)."""
    got = squirrel.pvget([pv.name for pv in pvs.values()], timeout)
    return {address: plain(pv, got[pv.name]) for address, pv in pvs.items()}


def live_values(squirrel, addresses) -> dict:
    """What the monitor keeps in Redis for `addresses`."""
    return live.read_values(list(addresses), squirrel.redis.client())


def restore_of(squirrel, job_id: int) -> dict:
    job = squirrel.get(f"/api/v1/jobs/{job_id}/").json()
    return squirrel.get(f"/api/v1/restores/{job['result_id']}/").json()


def items_of(squirrel, restore_id: int) -> dict[str, dict]:
    items, url = {}, f"/api/v1/restores/{restore_id}/items/?page_size=1000"
    while url:
        page = squirrel.get(url.removeprefix(squirrel.url)).json()
        items.update((item["pv_name"], item) for item in page["results"])
        url = page["next"]
    return items


def pva_health(squirrel) -> dict:
    """The monitor's shard in the health report."""
    (shard,) = squirrel.get("/api/v1/health/").json()["monitor"]["shards"]
    return shard


def restore(squirrel, snapshot_id: int, addresses: list[str], expected_writes: int) -> int:
    """Preview and confirm a restore of `addresses` to the snapshot; its job's id."""
    preview = squirrel.preview(snapshot_id, addresses)
    assert preview["write_count"] == expected_writes, preview
    response = squirrel.execute(preview["id"])
    assert response.status_code == 202, response.text
    return response.json()["id"]


def test_a_pvaccess_server_killed_while_its_puts_are_in_flight(squirrel):
    squirrel.env["SQUIRREL_RESTORE_START_DEADLINE"] = "30"
    pva = squirrel.start_pva(PVA_PVS, put_delay=PUT_DELAY)
    server = f"127.0.0.1:{squirrel.pva_port}"
    pvs = pva_pvs()
    squirrel.start("web")
    created = squirrel.post("/api/v1/pvs/bulk/", [{"setpoint_address": a, "device": "PVA"} for a in pvs])
    assert created.status_code == 201, created.text
    squirrel.start("worker", "monitor")
    monitor_pid = squirrel["monitor"].process.pid
    ca = ca_addresses()
    every = ca + list(pvs)
    first = served_values(squirrel, pvs)
    assert all(value is not None for value in first.values()), first

    # Saved: the pvAccess PVs one step from their first values, the Channel Access ones as they are.
    squirrel.pvput({pv.name: field(pv, moved(pv, first[a])) for a, pv in pvs.items()})
    saved_pva = {a: moved(pv, first[a]) for a, pv in pvs.items()}
    saved_ca = squirrel.caget(ca)
    snapshot = squirrel.wait_for_job(squirrel.take_snapshot(every, "before the move"))
    assert snapshot["status"] == "succeeded", snapshot
    # Then everything moved away again, and the monitor has seen it.
    squirrel.caput({a: v + MOVE for a, v in saved_ca.items()})
    squirrel.pvput({pv.name: field(pv, moved(pv, first[a], 2)) for a, pv in pvs.items()})
    eventually(
        lambda: same(
            {a: v.value for a, v in live_values(squirrel, pvs).items()},
            {a: moved(pv, first[a], 2) for a, pv in pvs.items()},
        ),
        10,
        what="the monitor holding the moved pvAccess values",
    )
    health = pva_health(squirrel)
    assert health["protocols"]["pva"] == {"addresses": len(pvs), "connected": len(pvs), "never_connected": 0}

    puts_before = pva.recent().count("completes in")  # the test's own puts above
    job_id = restore(squirrel, snapshot["result_id"], every, len(every))
    eventually(
        lambda: pva.recent().count("completes in") >= puts_before + len(pvs),
        30,
        interval=0.01,
        what="every pvAccess put of the restore in flight",
    )
    pva.signal(signal.SIGKILL)
    killed = time.monotonic()
    pva.process.wait(10)

    # The monitor marks every pvAccess value disconnected, keeping what it last held; health names
    # the server that went away (a degraded IOC), and counts pvAccess apart.
    eventually(
        lambda: all(not v.connected for v in live_values(squirrel, pvs).values()), 10, what="pvAccess disconnected"
    )
    print(f"\npvAccess values disconnected in Redis {time.monotonic() - killed:.1f} s after the kill")
    assert all(v.connected for v in live_values(squirrel, ca).values())
    shard = eventually(
        lambda: (s := pva_health(squirrel))["protocols"]["pva"]["connected"] == 0 and s, 10, what="health"
    )
    assert {"host": server, "connected": 0, "disconnected": len(pvs)} in shard["degraded_iocs"], shard
    assert shard["status"] == "degraded" and shard["never_connected"]["count"] == 0

    # What the operator is told: the job ran to its end; the restore is partial, every pvAccess
    # item says its put was not confirmed, every Channel Access item of every stage is verified.
    job = squirrel.wait_for_job(job_id, 60)
    print(f"the restore ended {time.monotonic() - killed:.1f} s after the kill")
    assert job["status"] == "succeeded", job
    told = restore_of(squirrel, job_id)
    assert told["status"] == "partial", told
    items = items_of(squirrel, told["id"])
    assert {a: items[a]["status"] for a in ca if items[a]["status"] != "verified"} == {}
    lost = {a: (items[a]["status"], items[a]["message"]) for a in pvs}
    # Every one went out (the server applied it, then died before completing it): a timeout, which
    # may have been applied (docs/restore.md), never "disconnected" (not written).
    assert all(status == "timeout" and message for status, message in lost.values()), lost
    print(f"the pvAccess items: {sorted(set(lost.values()))}")
    assert told["summary"]["verified"] == len(ca), told["summary"]
    # What the IOCs hold: Channel Access its saved values; no pvAccess server answers at all.
    assert squirrel.caget(ca) == pytest.approx(saved_ca)
    assert served_values(squirrel, pvs, timeout=1.0) == dict.fromkeys(pvs)

    # The server comes back (with its first values: the simulated server keeps nothing).
    pva.start()
    pva.wait_ready()
    restarted, wall = time.monotonic(), time.time()
    assert same(served_values(squirrel, pvs), first)

    def fresh() -> bool:
        values = live_values(squirrel, pvs)
        return all(v.connected and v.timestamp >= wall - 1 for v in values.values()) and same(
            {a: v.value for a, v in values.items()}, first
        )

    eventually(fresh, RECOVERY, interval=0.1, what="fresh pvAccess values in Redis without a monitor restart")
    print(f"fresh pvAccess values in Redis {time.monotonic() - restarted:.1f} s after the server restarted")
    assert squirrel["monitor"].alive() and squirrel["monitor"].process.pid == monitor_pid
    shard = eventually(
        lambda: (s := pva_health(squirrel))["protocols"]["pva"]["connected"] == len(pvs) and s, 10, what="health"
    )
    assert shard["degraded_iocs"] == [] and shard["status"] == "ok", shard

    # The operator restores again: only the pvAccess PVs differ from the snapshot now.
    again = restore(squirrel, snapshot["result_id"], every, len(pvs))
    job = squirrel.wait_for_job(again, 60)
    assert job["status"] == "succeeded", job
    assert restore_of(squirrel, again)["status"] == "succeeded"
    assert same(served_values(squirrel, pvs), saved_pva)
    assert squirrel.caget(ca) == pytest.approx(saved_ca)
    assert squirrel.dead() == []
