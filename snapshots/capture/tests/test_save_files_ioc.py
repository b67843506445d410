"""A .sav file written by the simulated IOC's autosave (`run_sim_ioc --autosave`), imported as a
snapshot and compared with the IOC's values read directly: every saved setting equal."""

import pytest

from pvs.channels import service
from pvs.importers import import_pvs
from pvs.models import PV
from snapshots.capture.importers import import_snapshot
from snapshots.capture.services import take_snapshot
from snapshots.comparison.rows import Comparison, compare
from snapshots.comparison.rules import MATCHING_STATUSES
from squirrel_site.testing import eventually

pytestmark = [pytest.mark.ioc, pytest.mark.django_db]


def read_again(ioc) -> None:
    """Wait until this process's Channel Access client reads every setpoint of the restarted IOC.

    Its channels to the IOC that stopped reconnect by themselves, but not always within the next
    test's read timeout: the test after this one (a direct snapshot, 5 s) once found all 300 PVs
    disconnected (CI)."""
    addresses = [pv.setpoint for pv in ioc.pvs]

    def all_read() -> bool:
        return all(result.reading is not None for result in service().read(addresses, timeout=2.0).values())

    eventually(all_read, 60.0, interval=0.5, what="every setpoint of the restarted IOC read by this process")


@pytest.fixture
def autosaving_ioc(restartable_sim_ioc, tmp_path):
    """The session's simulated IOC restarted with autosave writing `ioc.sav` every half second;
    restarted without it afterwards, and read again before the next test."""
    path = tmp_path / "ioc.sav"
    plain = list(restartable_sim_ioc.args)
    restartable_sim_ioc.args = [*plain, "--autosave", str(path), "--autosave-period", "0.5"]
    restartable_sim_ioc.restart()
    read_again(restartable_sim_ioc)
    yield restartable_sim_ioc, path
    restartable_sim_ioc.args = plain
    restartable_sim_ioc.restart()
    read_again(restartable_sim_ioc)


def test_the_simulated_iocs_autosave_file_imports_equal_to_its_live_values(autosaving_ioc, redis_db, admin_user):
    ioc, path = autosaving_ioc
    report = import_pvs("registry.csv", ioc.registry_csv.read_bytes(), dry_run=False)
    assert report.ok, report.errors
    # The file autosave replaces while we read: each read sees a whole file (atomic replace).
    eventually(lambda: path.with_name("ioc.savB").exists(), 10.0, what="a second autosave write")
    for _ in range(20):
        assert path.read_text().endswith("<END>\n")
    live = take_snapshot(title="live", created_by=admin_user, mode="direct", read_timeout=5.0)

    imported = import_snapshot("ioc.sav", path.read_bytes(), created_by=admin_user)

    saved = {value.pv_name: value for value in imported.values.all()}
    settings = {pv.setpoint for pv in ioc.pvs if pv.kind in ("pair", "protected", "int", "enum", "string")}
    settings |= {pv.setpoint for pv in ioc.pvs if pv.kind in ("waveform", "string_waveform")}
    assert set(saved) == settings
    assert (imported.origin, imported.disconnected_count, imported.unknown_pvs) == ("imported", 0, [])
    assert {saved[pv.setpoint].value_type for pv in ioc.of_kind("enum")} == {"enum"}  # the registry's kind
    rows = compare(
        Comparison(a=imported, b=live, pvs=PV.objects.filter(setpoint_address__in=settings)), limit=None
    ).rows
    assert len(rows) == len(settings)
    assert [(row.name, row.status) for row in rows if row.status not in MATCHING_STATUSES] == []
