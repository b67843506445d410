"""The live table: PVs by tag, tag group, device or text, paged, with live cells."""

import pytest
from django.urls import reverse

from pvs.models import PV
from tags.models import Tag, TagGroup

pytestmark = pytest.mark.django_db


@pytest.fixture
def li20_quads():
    area = TagGroup.objects.create(name="Area")
    li20 = Tag.objects.create(group=area, name="LI20")
    PV.objects.bulk_create(
        PV(
            setpoint_address=f"L:{i:03}:SP",
            readback_address=f"L:{i:03}:RB" if i % 2 else "",
            device=f"QUAD:{i % 3}",
            description=f"magnet {i}",
        )
        for i in range(130)
    )
    for pv in PV.objects.filter(device="QUAD:0"):
        pv.tags.add(li20)
    return li20


def addresses(response) -> list[str]:
    return [pv.setpoint_address for pv in response.context["page"].rows]


def test_live_table_needs_a_login(client):
    response = client.get(reverse("pvs:live"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_live_table_pages_pvs_with_live_cells(client, admin_user, li20_quads, django_assert_max_num_queries):
    client.force_login(admin_user)
    # Session, user, count, PVs, their tags, PV set, tag and tag group choices, ...: never one per row.
    with django_assert_max_num_queries(10):
        response = client.get(reverse("pvs:live"))
    assert addresses(response)[:2] == ["L:000:SP", "L:001:SP"] and len(addresses(response)) == 100
    page = response.text
    assert 'data-live-address="L:001:SP"' in page and 'data-live-address="L:001:RB"' in page
    assert 'data-live-address="L:000:RB"' not in page  # no readback, no cell
    assert '/static/squirrel/live.css"' in page  # the banner's and old cells' styles
    assert "rows 1–100 of 130" in page
    second = client.get(reverse("pvs:live"), {"page": 2})
    assert addresses(second)[0] == "L:100:SP" and len(addresses(second)) == 30


@pytest.mark.parametrize(
    "query, count, first",
    [
        ({"device": "quad:1"}, 43, "L:001:SP"),
        ({"search": "magnet 12"}, 11, "L:012:SP"),
        ({"tag": "LI20"}, 44, "L:000:SP"),
        ({"tag_group": "Area"}, 44, "L:000:SP"),
    ],
)
def test_live_table_filters(client, admin_user, li20_quads, query, count, first):
    client.force_login(admin_user)
    if "tag" in query:
        query["tag"] = li20_quads.pk
    if "tag_group" in query:
        query["tag_group"] = li20_quads.group_id
    response = client.get(reverse("pvs:live"), query)
    assert len(addresses(response)) == count and addresses(response)[0] == first


def test_an_unknown_tag_is_a_form_error(client, admin_user, li20_quads):
    client.force_login(admin_user)
    response = client.get(reverse("pvs:live"), {"tag": "999"})
    assert response.status_code == 200
    assert "Select a valid choice" in response.text and addresses(response) == []
