"""An NTTable of the simulated pvAccess server saved by a direct snapshot (pvs.channels' service),
changed by an independent p4p client, then compared: the changed column and row are reported,
against a second direct snapshot and against the value read directly (marker `ioc`)."""

import pytest

from pvs import pva_bulk, sim_pva
from pvs.channels import Service
from pvs.models import PV
from snapshots.capture.services import take_snapshot
from snapshots.comparison.rows import Comparison, compare
from snapshots.comparison.rules import ComparisonStatus as S
from snapshots.models import SnapshotMode
from squirrel_site.testing.snapshots import Structure

pytestmark = [pytest.mark.ioc, pytest.mark.django_db]


@pytest.fixture
def reader(pva_server):
    """pvs.channels' service for both protocols, its pvAccess half on the simulated server's ports."""
    contexts = pva_bulk.make_contexts(pva_server.conf, 2)
    service = pva_bulk.PvaService(contexts)
    yield Service(pva=lambda: service)
    service.close()
    for context in contexts:
        context.close()


@pytest.fixture
def table_pv(pva_server, make_pvs):
    """The server's first NTTable as a registry PV (tolerance 0.01); its first value is put back after."""
    table = pva_server.of_type(sim_pva.TABLE)
    (pv,) = make_pvs(f"pva://{table.name}", abs_tolerance=0.01, rel_tolerance=0.0)
    yield table, pv
    pva_server.pvput({table.name: {"value": table.value}})


def test_a_changed_table_column_is_reported_against_a_snapshot_and_a_direct_read(
    pva_server, reader, table_pv, admin_user, live_values
):
    table, pv = table_pv
    selection = PV.objects.filter(pk=pv.pk)
    before = take_snapshot(
        title="before", created_by=admin_user, pvs=selection, mode=SnapshotMode.DIRECT, reader=reader
    )
    saved = before.values.get()
    assert saved.value_type == "structure" and saved.connected
    assert saved.setpoint_str.startswith('{"id":"epics:nt/NTTable:')

    setpoint = list(table.value["setpoint"])
    changed = [setpoint[0] + 0.005, setpoint[1], setpoint[2] + 0.5, setpoint[3]]  # row 0 within, row 2 not
    pva_server.pvput({table.name: {"value": {**table.value, "setpoint": changed}}})
    served = pva_server.pvget([table.name])[table.name]["value"]["setpoint"]
    assert served == pytest.approx(changed)  # the independent client reads the change back

    after = take_snapshot(title="after", created_by=admin_user, pvs=selection, mode=SnapshotMode.DIRECT, reader=reader)
    (row,) = compare(Comparison(a=before, b=after)).rows
    assert row.status == S.OUT_OF_TOLERANCE and row.kind == "structure"
    assert row.differences == ["column `setpoint`: row 2 differs"]
    assert row.delta_display == "column `setpoint`: row 2 differs"
    assert row.a.display.startswith(f'table {sim_pva.TABLE_ROWS}×4: device ["')

    # The value read directly now, as the live side.
    read = reader.read([pv.setpoint_address])[pv.setpoint_address]
    assert read.reading is not None and read.reading.kind == "structure", read
    live_values({pv.setpoint_address: Structure(read.reading.value)})
    (live_row,) = compare(Comparison(a=before)).rows
    assert (live_row.status, live_row.differences) == (S.OUT_OF_TOLERANCE, ["column `setpoint`: row 2 differs"])

    # Within tolerance everywhere once row 2 is back: only row 0's 0.005 remains.
    pva_server.pvput({table.name: {"value": {**table.value, "setpoint": [*changed[:2], setpoint[2], setpoint[3]]}}})
    again = take_snapshot(title="again", created_by=admin_user, pvs=selection, mode=SnapshotMode.DIRECT, reader=reader)
    (row,) = compare(Comparison(a=before, b=again)).rows
    assert (row.status, row.differences, row.delta_display) == (S.WITHIN, [], "")
