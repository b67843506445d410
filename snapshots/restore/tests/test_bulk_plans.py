"""The bulk statements' plans whatever the planner's statistics say (none, stale, fresh).

Every statement a snapshot, a restore, a compare, the drift summary and the snapshot values page
and API run is EXPLAINed (without ANALYZE) just before it runs, on 3,000 PVs, and no plan may
hold a nested loop that reads a bulk table once per row of another other than by a unique index
lookup: that plan costs rows x rows, and at 50,000 PVs it took a restore from seconds to
minutes. `stale` is what an installation has between two ANALYZE runs: statistics gathered
before the rows the statement reads were written, whose new ids lie beyond the histograms.
"""

import io

import pytest
from django.urls import reverse

from pvs.models import PV, PVSet
from pvs.selections import pv_set_pvs, select_pvs
from snapshots.capture.services import take_snapshot
from snapshots.comparison.drift import drift_summary
from snapshots.comparison.nway import NWayComparison, compare_columns, write_nway_csv
from snapshots.comparison.rows import Comparison, compare
from snapshots.models import Snapshot
from snapshots.restore.execute import execute_restore
from snapshots.restore.preview import preview_restore
from squirrel_site.testing.plans import Plans, analyze
from tags.models import Tag, TagGroup

# slow: each builds and analyses tables of thousands of rows, then reads the plans.
pytestmark = [pytest.mark.django_db, pytest.mark.slow]

PVS = 3_000


def earlier_snapshot():
    return Snapshot.objects.get(title="earlier")


@pytest.fixture(params=["none", "stale", "fresh"])
def statistics(request, ioc, user):
    """The registry and an earlier snapshot and restore; ANALYZE after them when `stale`. The
    test calls the returned function right before the statements it checks (ANALYZE if `fresh`)."""
    area = TagGroup.objects.create(name="Area")
    areas = [Tag.objects.create(group=area, name=f"A{i}") for i in range(20)]
    pvs = PV.objects.bulk_create(
        PV(
            setpoint_address=f"P:SP{i}",
            readback_address=f"P:RB{i}" if i % 3 else "",
            restore_stage=i % 2,
            abs_tolerance=0.001,
        )
        for i in range(PVS)
    )
    for i, pv in enumerate(pvs):
        ioc.add(pv.setpoint_address, float(i), readback=pv.readback_address)
    PV.tags.through.objects.bulk_create(PV.tags.through(pv=pv, tag=areas[i % 20]) for i, pv in enumerate(pvs))
    earlier = take_snapshot(title="earlier", created_by=user, mode="direct", reader=ioc)
    execute_restore(preview_restore(earlier, created_by=user, include_unchanged=True, io=ioc), user=user, io=ioc)
    if request.param == "stale":
        analyze()
    return analyze if request.param == "fresh" else (lambda: None)


def test_a_snapshot_a_restore_and_its_verification_join_no_bulk_table_row_by_row(statistics, ioc, user):
    saved = take_snapshot(title="saved", created_by=user, mode="direct", reader=ioc)
    for address in list(ioc.values):
        ioc.values[address] += 0.5
    statistics()
    with Plans() as plans:
        take_snapshot(title="taken", created_by=user, mode="direct", reader=ioc)
        preview = preview_restore(saved, created_by=user, include_unchanged=True, io=ioc)
        ioc.denied.update(f"P:SP{i}" for i in range(0, PVS, 3))  # a second outcome of the puts
        restore = execute_restore(preview, user=user, io=ioc, verify=True, verify_timeout=1.0)
    assert restore.summary == {"verified": PVS - PVS // 3, "no_write_access": PVS // 3}
    assert any("INSERT INTO snapshots_restoreitem" in sql for sql, _ in plans.plans)
    assert plans.quadratic_joins() == [], "\n".join(plans.quadratic_joins())


def test_compares_and_the_drift_summary_join_no_bulk_table_row_by_row(statistics, ioc, user):
    a = take_snapshot(title="a", created_by=user, mode="direct", reader=ioc)
    for address in list(ioc.values)[::7]:
        ioc.values[address] += 0.5
    b = take_snapshot(title="b", created_by=user, mode="direct", reader=ioc)
    statistics()
    with Plans() as plans:
        for sort in ("name", "-delta", "status", "device"):
            compare(Comparison(a=a, b=b, sort=sort), limit=100)
        compare(Comparison(a=a, b=b, differences_only=True), limit=None)
        compare(Comparison(a=a), limit=100)
        compare(Comparison(a=a), limit=0, with_counts=True)
        drift_summary(a)
        compare_columns(NWayComparison(a, (b, earlier_snapshot(), b)), limit=100)
        compare_columns(NWayComparison(a, (b, None), differences_only=True), limit=100)
        compare_columns(NWayComparison(a, (b,), name="SP1"), limit=None)
        compare_columns(NWayComparison(a, (None, b), min_severity=1, descending=True), offset=100, limit=100)
        write_nway_csv(NWayComparison(a, (b, earlier_snapshot()), differences_only=True), io.StringIO())
        write_nway_csv(NWayComparison(a, (b, None)), io.StringIO())
    assert len(plans.plans) >= 14
    assert plans.quadratic_joins() == [], "\n".join(plans.quadratic_joins())


def test_the_snapshot_values_page_and_api_join_no_bulk_table_row_by_row(statistics, ioc, user, client):
    snapshot = take_snapshot(title="shown", created_by=user, mode="direct", reader=ioc)
    statistics()
    client.force_login(user)
    with Plans() as plans:
        pages = [
            client.get(reverse("snapshots:detail", args=[snapshot.pk])),
            client.get(reverse("snapshots:detail", args=[snapshot.pk]), {"page": 20, "sort": "-setpoint"}),
            client.get(f"/api/v1/snapshots/{snapshot.pk}/values/"),
        ]
    assert [page.status_code for page in pages] == [200, 200, 200]
    assert any("snapshots_snapshotvalue" in sql for sql, _ in plans.plans)
    assert plans.quadratic_joins() == [], "\n".join(plans.quadratic_joins())


def _selections():
    """A selection by tag, by tag group and by a PV set (its filters a tag, plus an explicit list):
    the registry selections a compare, a restore and a snapshot take."""
    tags = Tag.objects.filter(group__name="Area").order_by("pk")
    pv_set = PVSet.objects.create(name="Area 1 and more", filters={"tag": [tags[1].pk]})
    pv_set.pvs.add(*PV.objects.order_by("pk")[:40])
    return {
        "tag": select_pvs({"tag": [tags[0].pk]}),
        "tag group": select_pvs({"tag_group": tags[0].group_id}),
        "PV set": pv_set_pvs(pv_set),
    }


def test_compares_of_a_tag_or_pv_set_selection_join_no_bulk_table_row_by_row(statistics, ioc, user):
    a = take_snapshot(title="a", created_by=user, mode="direct", reader=ioc)
    for address in list(ioc.values)[::7]:
        ioc.values[address] += 0.5
    b = take_snapshot(title="b", created_by=user, mode="direct", reader=ioc)
    selections = _selections()
    statistics()
    with Plans() as plans:
        for pvs in selections.values():
            pages = [
                compare(Comparison(a=a, b=b, pvs=pvs), limit=100),
                compare(Comparison(a=a, b=b, pvs=pvs, differences_only=True), limit=None),
                compare(Comparison(a=a, pvs=pvs), limit=0, with_counts=True),
                compare_columns(NWayComparison(a, (b, earlier_snapshot()), pvs=pvs), limit=100),
                compare_columns(NWayComparison(a, (b, None), pvs=pvs, differences_only=True), limit=100),
            ]
            write_nway_csv(NWayComparison(a, (b, earlier_snapshot()), pvs=pvs), io.StringIO())
            assert [page.total for page in pages][:2] == [pvs.count(), len(pages[1].rows)]
    assert plans.quadratic_joins() == [], "\n".join(plans.quadratic_joins())


def test_a_snapshot_and_a_restore_of_a_tag_or_pv_set_selection_join_no_bulk_table_row_by_row(statistics, ioc, user):
    saved = take_snapshot(title="saved", created_by=user, mode="direct", reader=ioc)
    for address in list(ioc.values):
        ioc.values[address] += 0.5
    selections = _selections()
    statistics()
    with Plans() as plans:
        for name, pvs in selections.items():
            taken = take_snapshot(title=name, created_by=user, mode="direct", reader=ioc, pvs=pvs)
            preview = preview_restore(saved, created_by=user, include_unchanged=True, io=ioc, pvs=pvs)
            assert taken.pv_count == preview.items.count() == pvs.count()
    assert plans.quadratic_joins() == [], "\n".join(plans.quadratic_joins())
