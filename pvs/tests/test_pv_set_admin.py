"""PV sets in the admin: the set's form (filters as fields, addresses one per line), the count of its
PVs linked to the PV list filtered by it, the PV list's add/remove actions, audit entries."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME

from pvs import pv_sets
from pvs.models import PV, PVSet
from squirrel_site.audit import AuditAction, AuditVia
from squirrel_site.models import AuditEntry
from tags.models import Tag, TagGroup

pytestmark = pytest.mark.django_db

SETS = "/admin/pvs/pvset/"
PVS = "/admin/pvs/pv/"


@pytest.fixture
def registry():
    linac = Tag.objects.create(group=TagGroup.objects.create(name="Area"), name="LINAC")
    PV.objects.bulk_create(PV(setpoint_address=f"A:{i:03}", device="QUAD" if i < 30 else "BPM") for i in range(60))
    linac.pvs.add(*PV.objects.filter(setpoint_address__lt="A:020"))
    return linac


@pytest.fixture
def staff(client, make_user):
    """A member of staff in the operator role (operators curate PV sets)."""
    user = make_user("operator")
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    client.force_login(user)
    return user


def add_form(**fields) -> dict:
    return {"name": "Quads", "description": "", "device": "", "search": "", "read_only": "", "pv_list": ""} | fields


def test_an_operator_adds_a_set_in_the_admin_and_sees_how_many_pvs_it_selects(client, staff, registry):
    response = client.post(f"{SETS}add/", add_form(tag=[registry.pk], device="QUAD", pv_list="A:040\nA:041"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    pv_set = PVSet.objects.get()
    assert pv_set.filters == {"tag": [registry.pk], "device": "QUAD"}
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.via, entry.actor) == (AuditAction.PV_SET_CREATED, AuditVia.ADMIN, staff)

    change = client.get(f"{SETS}{pv_set.pk}/change/").text
    assert f'href="{PVS}?pv_set={pv_set.pk}">22 PVs</a>' in change  # 20 LINAC quads and the two listed
    filtered = client.get(PVS, {"pv_set": pv_set.pk})
    assert filtered.context["cl"].result_count == 22
    listing = client.get(SETS).text
    assert "Quads" in listing and "22 PVs" in listing


def test_count_the_pvs_counts_the_unsaved_form_and_saves_nothing(client, staff, registry):
    assert "Count the PVs (without saving)" in client.get(f"{SETS}add/").text

    response = client.post(f"{SETS}add/", add_form(tag=[registry.pk], device="QUAD", pv_list="A:040", _count="1"))

    assert response.status_code == 200
    page = response.text
    assert "As the form stands, the set selects 21 PVs. Nothing was saved: Save to keep it." in page
    assert "errornote" not in page and 'value="Quads"' in page and "A:040</textarea>" in page  # as typed
    assert not PVSet.objects.exists() and not AuditEntry.objects.exists()


def test_count_the_pvs_on_a_saved_set_counts_the_change_before_it_is_saved(client, staff, registry):
    assert client.post(f"{SETS}add/", add_form(device="QUAD")).status_code == 302
    pv_set = PVSet.objects.get()

    response = client.post(f"{SETS}{pv_set.pk}/change/", add_form(device="BPM", pv_list="A:001", _count="1"))

    assert "the set selects 31 PVs" in response.text and f'href="{PVS}?pv_set={pv_set.pk}">30 PVs</a>' in response.text
    pv_set.refresh_from_db()
    assert pv_set.filters == {"device": "QUAD"} and not pv_set.pvs.exists()
    bad = client.post(f"{SETS}{pv_set.pk}/change/", add_form(pv_list="NO:SUCH", _count="1"))
    assert "Not in the registry: NO:SUCH." in bad.text and "the set selects" not in bad.text


def test_the_admin_form_refuses_unknown_addresses_and_stores_nothing(client, staff, registry):
    response = client.post(f"{SETS}add/", add_form(pv_list="A:001\nNO:SUCH"))
    assert response.status_code == 200
    assert "Not in the registry: NO:SUCH." in response.text
    assert not PVSet.objects.exists() and not AuditEntry.objects.exists()


def test_pvs_are_added_to_and_removed_from_a_set_from_the_pv_list(client, staff, registry):
    pv_set = pv_sets.save_pv_set(PVSet(name="Chosen"), member_ids=pv_sets.pv_ids(["A:050"]), actor=None, via="admin")
    post = {"action": "add_to_pv_set", "select_across": "1", "index": 0, ACTION_CHECKBOX_NAME: [PV.objects.first().pk]}
    page = client.post(f"{PVS}?tag={registry.pk}", post)
    assert page.status_code == 200 and "This applies to <strong>20</strong> PVs" in page.text
    response = client.post(f"{PVS}?tag={registry.pk}", {**post, "apply": "Apply", "pv_set": pv_set.pk}, follow=True)
    assert "Added 20 PVs: PV set “Chosen”." in response.text
    assert pv_set.pvs.count() == 21

    ids = list(PV.objects.filter(setpoint_address__in=["A:000", "A:050"]).values_list("pk", flat=True))
    remove = {"action": "remove_from_pv_set", "index": 0, ACTION_CHECKBOX_NAME: ids, "apply": "Apply"}
    client.post(PVS, {**remove, "pv_set": pv_set.pk})
    assert pv_set.pvs.count() == 19
    assert [entry.action for entry in AuditEntry.objects.order_by("pk")][-2:] == [AuditAction.PV_SET_CHANGED] * 2


def test_a_viewer_on_staff_may_not_change_sets(client, make_user, registry):
    viewer = make_user("viewer")
    viewer.is_staff = True
    viewer.save(update_fields=["is_staff"])
    client.force_login(viewer)
    assert client.post(f"{SETS}add/", add_form(pv_list="A:001")).status_code == 403
    actions = [name for name, _ in client.get(PVS).context["action_form"].fields["action"].choices]
    assert "add_to_pv_set" not in actions
    assert not PVSet.objects.exists()


def test_deleting_a_set_in_the_admin_is_audited(client, staff, registry):
    pv_set = pv_sets.save_pv_set(PVSet(name="Gone", filters={"device": "BPM"}), actor=None, via="admin")
    client.post(f"{SETS}{pv_set.pk}/delete/", {"post": "yes"})
    assert not PVSet.objects.exists()
    assert AuditEntry.objects.latest("pk").action == AuditAction.PV_SET_DELETED
