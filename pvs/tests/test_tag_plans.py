"""The tags of a page of PVs are read by PV whatever the planner's statistics say.

Every statement of the pages that list PVs with their tags (the live table, a PV set's page,
the admin, the API, the snapshot page) is EXPLAINed (without ANALYZE) just before it runs, on
3,000 PVs, and the statement loading the page's tags may read the PV-tag links only through
their pv_id index. Django's prefetch read them tag by tag (an index on tag_id, filtering the
page's PVs out of every tag's links) or all of them, when the registry had no statistics: 160 ms
of a 568 ms snapshot page at 50,000 PVs (docs/benchmarks.md, "Pages").
"""

import pytest
from django.urls import reverse

from pvs.models import PV, PVSet
from snapshots.capture.services import take_snapshot
from squirrel_site.testing.plans import Plans, analyze
from squirrel_site.testing.restore import FakeIOC
from tags.models import Tag, TagGroup

# slow: each builds and analyses tables of thousands of rows, then reads the plans.
pytestmark = [pytest.mark.django_db, pytest.mark.slow]

PVS = 3_000
LINKS = PV.tags.through._meta.db_table


def _fill(first: int, last: int, areas: list[Tag], subsystems: list[Tag]) -> None:
    """PVs first..last-1 as bench_pages has them: an area each, a subsystem or two."""
    pvs = PV.objects.bulk_create(
        PV(setpoint_address=f"P:AREA{i % 20}:DEV{i}:SP", device=f"DEV{i}") for i in range(first, last)
    )
    links = []
    for i, pv in zip(range(first, last), pvs, strict=True):
        tags = {areas[i % 20], subsystems[i % 8]} | ({subsystems[(i + 1) % 8]} if i % 3 == 0 else set())
        links += [PV.tags.through(pv=pv, tag=tag) for tag in tags]
    PV.tags.through.objects.bulk_create(links)


@pytest.fixture(params=["none", "empty", "stale", "fresh"])
def registry(request):
    """3,000 PVs with 7,000 tag links. Statistics: none (never analyzed), empty (analyzed
    before the registry was filled), stale (analyzed at a tenth of it), fresh."""
    if request.param == "empty":
        analyze()
    area, subsystem = TagGroup.objects.create(name="Area"), TagGroup.objects.create(name="Subsystem")
    areas = [Tag.objects.create(group=area, name=f"AREA{i}") for i in range(20)]
    subsystems = [Tag.objects.create(group=subsystem, name=f"SUB{i}") for i in range(8)]
    _fill(0, PVS // 10, areas, subsystems)
    if request.param == "stale":
        analyze()
    _fill(PVS // 10, PVS, areas, subsystems)
    if request.param == "fresh":
        analyze()
    return request.param


def test_every_page_of_pvs_reads_its_tag_links_by_pv(registry, admin_client, admin_user, redis_db):
    ioc = FakeIOC()
    for i, address in enumerate(PV.objects.values_list("setpoint_address", flat=True)):
        ioc.add(address, float(i))
    snapshot = take_snapshot(title="shown", created_by=admin_user, mode="direct", reader=ioc)
    pv_set = PVSet.objects.create(name="a few", filters={"tag": [Tag.objects.get(name="AREA3").pk]})
    pv_set.pvs.add(*PV.objects.order_by("pk")[:500])
    pages = [
        (reverse("pvs:live"), {}),
        (reverse("pvs:live"), {"page": 20}),
        (reverse("pvs:live"), {"tag": Tag.objects.get(name="SUB2").pk}),
        (reverse("pvs:pv_set", args=[pv_set.pk]), {}),
        (reverse("admin:pvs_pv_changelist"), {}),
        ("/api/v1/pvs/", {}),
        (f"/api/v1/pv-sets/{pv_set.pk}/pvs/", {}),
        (reverse("snapshots:detail", args=[snapshot.pk]), {}),
        (reverse("snapshots:detail", args=[snapshot.pk]), {"page": 20, "sort": "-setpoint"}),
    ]
    with Plans() as plans:
        responses = [admin_client.get(url, query) for url, query in pages]
    assert [response.status_code for response in responses] == [200] * len(pages)
    tag_loads = [sql for sql, plan in plans.plans if LINKS in sql and "tags_taggroup" in sql]
    assert len(tag_loads) == len(pages)
    assert plans.reads_not_by(LINKS, "pv_id", among="tags_taggroup") == [], "\n".join(
        plans.reads_not_by(LINKS, "pv_id", among="tags_taggroup")
    )
