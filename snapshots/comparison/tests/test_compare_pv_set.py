"""Comparing only the PVs of a saved PV set, on the compare page and in the API."""

import pytest
from django.urls import reverse

from pvs.models import PVSet
from pvs.pv_sets import pv_ids, save_pv_set
from squirrel_site.audit import AuditVia

pytestmark = pytest.mark.django_db


@pytest.fixture
def pair(make_snapshot, make_pvs):
    make_pvs("P:A", "P:B", "P:C", device="MAG")
    a = make_snapshot("Before", {"P:A": 1.0, "P:B": 2.0, "P:C": 3.0})
    b = make_snapshot("After", {"P:A": 1.5, "P:B": 2.5, "P:C": 3.0})
    return a, b


def test_the_compare_page_and_api_keep_to_the_pvs_of_a_set(client, viewer, pair):
    a, b = pair
    pv_set = save_pv_set(PVSet(name="A and C"), member_ids=pv_ids(["P:A", "P:C"]), actor=None, via=AuditVia.PAGE)
    client.force_login(viewer)
    response = client.get(reverse("snapshots:compare"), {"a": a.pk, "b": b.pk, "pv_set": pv_set.pk})
    assert response.status_code == 200
    assert [row.name for row in response.context["result"].rows] == ["P:A", "P:C"]
    assert response.context["form"].cleaned_data["pv_set"] == pv_set
    api = client.get(reverse("snapshots-api:compare"), {"a": a.pk, "b": b.pk, "pv_set": pv_set.pk})
    assert api.status_code == 200, api.json()
    assert [row["pv_name"] for row in api.json()["results"]] == ["P:A", "P:C"]


@pytest.mark.parametrize("value", ["999999", "x"])
def test_an_unknown_set_is_one_clear_error(client, viewer, pair, value):
    a, b = pair
    client.force_login(viewer)
    response = client.get(reverse("snapshots:compare"), {"a": a.pk, "b": b.pk, "pv_set": value})
    assert response.status_code == 400
    assert response.context["errors"]["pv_set"] == [
        "Select a valid choice. That choice is not one of the available choices."
    ]
