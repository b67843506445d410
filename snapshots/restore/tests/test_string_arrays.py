"""Arrays of strings (DBF_STRING waveforms) end to end against the simulated IOC: saved, compared
element by element, restored, shown; what the IOC holds is read and written by an independent
Channel Access process (squirrel_site.testing.ioc)."""

import html

import pytest

from pvs import epics_io, sim
from pvs.models import PV
from snapshots.comparison.rows import Comparison, compare
from snapshots.models import RestoreAction, RestoreItemStatus, SnapshotValue
from snapshots.restore.execute import execute_restore
from snapshots.restore.preview import preview_restore
from squirrel_site.testing.ioc import caget_many, caput_many
from squirrel_site.testing.restore import actions, statuses

pytestmark = [pytest.mark.ioc, pytest.mark.django_db(transaction=True)]


def test_a_string_waveform_is_saved_compared_restored_and_shown(sim_ioc_registry, user, admin_user, client):
    from snapshots.capture.services import take_snapshot

    waveform = sim_ioc_registry.of_kind(sim.STRING_WAVEFORM)[0]
    address = waveform.setpoint
    io = epics_io.epics_service()
    pvs = PV.objects.filter(setpoint_address=address)
    original = caget_many([address])[address]
    assert original == list(waveform.value)

    before = take_snapshot(title="Names before", created_by=user, pvs=pvs, mode="direct", reader=io)
    stored = SnapshotValue.objects.get(snapshot=before, pv_name=address)
    assert (stored.value_type, stored.connected, stored.setpoint_value) == ("string_array", True, original)

    changed = list(original)
    changed[1] = "Renamed"
    caput_many({address: changed})
    assert caget_many([address])[address] == changed
    after = take_snapshot(title="Names after", created_by=user, pvs=pvs, mode="direct", reader=io)

    # Compared element by element (in SQL for two snapshots): one element differs.
    (row,) = compare(Comparison(a=before, b=after)).rows
    assert (row.kind, row.status, row.a.value, row.b.value) == ("string_array", "out_of_tolerance", original, changed)
    assert row.differing_elements == [(1, f'"{original[1]}"', '"Renamed"', "")]
    (same,) = compare(Comparison(a=before, b=before)).rows
    assert same.status == "equal"

    preview = preview_restore(before, created_by=user, pvs=pvs, io=io)
    assert actions(preview)[address] == RestoreAction.WRITE
    restore = execute_restore(preview, user=user, io=io, verify_timeout=5.0)
    assert statuses(restore)[address] == RestoreItemStatus.VERIFIED
    assert caget_many([address])[address] == original
    assert restore.undo_snapshot.values.get(pv_name=address).setpoint_value == changed

    # Shown on the snapshot page as quoted elements.
    client.force_login(admin_user)
    page = client.get(f"/snapshots/{before.pk}/").content.decode()
    shown = (
        "["
        + ", ".join(f'"{text}"' for text in original[:5])
        + (f", … ({len(original)} values)]" if len(original) > 5 else "]")
    )
    assert html.escape(shown) in page
