"""Cache and hybrid snapshots of pvAccess PVs (``pva://`` addresses): the cache as the monitor
writes it, the rest read from the simulated pvAccess server (marker `ioc`) and checked against
p4p's own client in another process."""

import json

import pytest

from pvs import sim_pva
from pvs.models import PV
from snapshots.capture.services import take_snapshot
from snapshots.models import SnapshotValue
from squirrel_site.epics_values import structure_text
from squirrel_site.testing.pva import KINDS, plain_value, pva_registry
from squirrel_site.testing.snapshots import Enum

TABLE = structure_text("epics:nt/NTTable:1.0", [["labels", "as"]], {"labels": ["a", "b"]})
# What the monitor holds of each type: the kind and value it writes (an enum with its choices).
CACHED = {
    sim_pva.DOUBLE: 2.5,
    sim_pva.INT: -7,
    sim_pva.BOOL: ("int", 1),
    sim_pva.STRING: "mode 3",
    sim_pva.DOUBLE_ARRAY: [0.5, -1.25],
    sim_pva.STRING_ARRAY: ("string_array", ["a", "b c"]),
    sim_pva.ENUM: Enum(2, sim_pva.ENUM_CHOICES),
    sim_pva.TABLE: ("structure", TABLE),
}


def plain(entry):
    if isinstance(entry, Enum):
        return entry.index
    return entry[1] if isinstance(entry, tuple) else entry


@pytest.mark.django_db
def test_a_cache_snapshot_keeps_every_pvaccess_kind_the_monitor_wrote(live_values, user):
    addresses = {kind: f"pva://SIM:PVA:CACHED:{kind}" for kind in CACHED}
    for address in addresses.values():
        PV.objects.create(setpoint_address=address)
    live_values({addresses[kind]: entry for kind, entry in CACHED.items()})

    snapshot = take_snapshot(title="Cached", created_by=user, mode="cache")
    rows = {row.pv_name: row for row in SnapshotValue.objects.filter(snapshot=snapshot)}
    assert snapshot.disconnected_count == 0
    for kind, entry in CACHED.items():
        row = rows[addresses[kind]]
        assert (row.value_type, row.source, row.connected) == (KINDS[kind], "cache", True), kind
        assert row.setpoint_value == plain(entry), kind
    enum = rows[addresses[sim_pva.ENUM]]
    assert (enum.setpoint_str, enum.enum_labels) == ("Standby", list(sim_pva.ENUM_CHOICES))
    assert json.loads(rows[addresses[sim_pva.TABLE]].setpoint_str)["value"] == {"labels": ["a", "b"]}


@pytest.mark.ioc
@pytest.mark.django_db(transaction=True)
def test_a_hybrid_snapshot_reads_what_the_cache_lacks_from_the_pvaccess_server(
    pva_server, pva_channels, live_values, user
):
    pvs = pva_registry(pva_server)
    cached = (sim_pva.INT, sim_pva.ENUM, sim_pva.TABLE)
    live_values({pvs[kind].setpoint_address: CACHED[kind] for kind in cached})
    wire = {kind: pv.setpoint_address.removeprefix("pva://") for kind, pv in pvs.items()}
    served = pva_server.pvget(wire.values())

    snapshot = take_snapshot(title="Hybrid", created_by=user, mode="hybrid", reader=pva_channels)
    rows = {row.pv_name: row for row in SnapshotValue.objects.filter(snapshot=snapshot)}
    assert snapshot.disconnected_count == 0 and len(rows) == len(pvs)
    for kind, pv in pvs.items():
        row = rows[pv.setpoint_address]
        assert row.value_type == KINDS[kind], kind
        if kind in cached:
            assert (row.source, row.setpoint_value) == ("cache", plain(CACHED[kind])), kind
        else:
            assert (row.source, row.setpoint_value) == ("direct", plain_value(kind, served[wire[kind]])), kind
    double = pva_server.of_type(sim_pva.DOUBLE)
    # Read directly with no metadata in the cache: the get's display is kept.
    row = rows[pvs[sim_pva.DOUBLE].setpoint_address]
    assert (row.units, row.precision) == (double.units, double.precision)
