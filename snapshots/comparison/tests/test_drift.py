"""snapshots.comparison.drift: live values against a snapshot, counted per tag group and tag."""

import pytest

from pvs.models import PV
from snapshots.comparison.drift import drift_summary, golden_snapshot
from snapshots.models import SnapshotTag
from squirrel_site.testing.snapshots import Enum
from tags.models import Tag, TagGroup

pytestmark = pytest.mark.django_db


@pytest.fixture
def saved(make_snapshot, make_pvs):
    make_pvs("L:A", "L:B", "L:C", "L:D", "L:E", abs_tolerance=0.1)
    make_pvs("L:GONE")
    return make_snapshot("saved", {"L:A": 1.0, "L:B": 2.0, "L:C": Enum(0), "L:D": 4.0, "L:E": None, "L:GONE": 1.0})


def test_golden_snapshot_is_the_newest_golden_one(make_snapshot):
    golden = SnapshotTag.objects.get_or_create(name="golden", defaults={"protected": True})[0]
    old, new = make_snapshot("old", {}), make_snapshot("new", {})
    make_snapshot("newest, not golden", {})
    old.tags.add(golden)
    new.tags.add(golden)
    assert golden_snapshot() == new


def test_drift_counts_pvs_per_tag_group_and_tag(saved, live_values):
    group = TagGroup.objects.create(name="Area")
    linac, ring = Tag.objects.create(group=group, name="Linac"), Tag.objects.create(group=group, name="Ring")
    other = Tag.objects.create(group=TagGroup.objects.create(name="System"), name="Vacuum")
    Tag.objects.create(group=group, name="Unused")
    pvs = {pv.setpoint_address: pv for pv in PV.objects.all()}
    for name in ("L:A", "L:B", "L:D"):
        pvs[name].tags.add(linac)
    for name in ("L:B", "L:C", "L:E"):
        pvs[name].tags.add(ring)
    pvs["L:A"].tags.add(other)
    live_values({"L:A": 1.0, "L:B": 3.0, "L:C": Enum(0), "L:D": None, "L:E": 5.0, "L:GONE": 1.0})
    summary = drift_summary(saved)
    assert (summary.totals.pvs, summary.totals.out_of_tolerance, summary.totals.disconnected) == (6, 1, 2)
    area, system = summary.groups
    assert (area.name, area.pvs, area.out_of_tolerance, area.disconnected) == ("Area", 5, 1, 2)
    by_tag = {tag.name: (tag.pvs, tag.out_of_tolerance, tag.disconnected) for tag in area.tags}
    assert by_tag == {"Linac": (3, 1, 1), "Ring": (3, 1, 1)}  # a tag without PVs is left out
    assert (system.name, [(t.name, t.pvs) for t in system.tags]) == ("System", [("Vacuum", 1)])


def test_a_deleted_pv_counts_in_the_totals_only(saved, live_values):
    tag = Tag.objects.create(group=TagGroup.objects.create(name="Area"), name="Linac")
    PV.objects.get(setpoint_address="L:GONE").tags.add(tag)
    PV.objects.get(setpoint_address="L:GONE").delete()
    live_values({"L:A": 1.0, "L:B": 2.0, "L:C": Enum(0), "L:D": 4.0, "L:E": 5.0})
    summary = drift_summary(saved)
    assert summary.totals.counts["only_in_a"] == 1 and summary.groups == []
