"""The PV set pages: list, a set's page with its PVs paged, create and edit (audited), delete, and
who may do what."""

import pytest
from django.urls import reverse

from pvs import pv_sets
from pvs.models import PV, PVSet
from squirrel_site.audit import AuditAction, AuditVia
from squirrel_site.models import AuditEntry
from tags.models import Tag, TagGroup

pytestmark = pytest.mark.django_db


@pytest.fixture
def registry():
    """150 PVs L:000:SP..L:149:SP; the first 120 tagged LI20, devices QUAD:0..2."""
    li20 = Tag.objects.create(group=TagGroup.objects.create(name="Area"), name="LI20")
    PV.objects.bulk_create(PV(setpoint_address=f"L:{i:03}:SP", device=f"QUAD:{i % 3}") for i in range(150))
    li20.pvs.add(*PV.objects.filter(setpoint_address__lt="L:120"))
    return li20


def form_data(**fields) -> dict:
    return {
        "name": "Linac quads",
        "description": "",
        "device": "",
        "search": "",
        "read_only": "",
        "pv_list": "",
    } | fields


def test_an_operator_creates_a_set_and_sees_its_pvs_paged(client, operator_user, registry):
    client.force_login(operator_user)
    assert client.get(reverse("pvs:pv_set_new")).status_code == 200
    response = client.post(
        reverse("pvs:pv_set_new"),
        form_data(tag=[registry.pk], device="QUAD:0", pv_list="L:121:SP\nL:122:SP\n"),
    )
    pv_set = PVSet.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("pvs:pv_set", args=[pv_set.pk])
    assert pv_set.filters == {"tag": [registry.pk], "device": "QUAD:0"}
    assert pv_sets.member_addresses(pv_set) == ["L:121:SP", "L:122:SP"]
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.via, entry.actor) == (AuditAction.PV_SET_CREATED, AuditVia.PAGE, operator_user)

    page = client.get(response["Location"])
    # 40 quads QUAD:0 among the 120 tagged, and the two listed PVs.
    assert page.context["page"].count == 42
    assert "PVs with all the tags Area: LI20" in page.text and "devices starting with “QUAD:0”" in page.text
    assert [pv.setpoint_address for pv in page.context["page"].rows][:2] == ["L:000:SP", "L:003:SP"]


def test_the_page_pages_a_large_set(client, operator_user, registry):
    pv_set = pv_sets.save_pv_set(PVSet(name="All", filters={"device": "QUAD"}), actor=None, via=AuditVia.PAGE)
    client.force_login(operator_user)
    first = client.get(reverse("pvs:pv_set", args=[pv_set.pk]))
    assert len(first.context["page"].rows) == 100 and "rows 1–100 of 150" in first.text
    second = client.get(reverse("pvs:pv_set", args=[pv_set.pk]), {"page": 2})
    assert second.context["page"].rows[0].setpoint_address == "L:100:SP"


def test_editing_shows_the_set_as_saved_and_records_the_change(client, operator_user, registry):
    pv_set = pv_sets.save_pv_set(
        PVSet(name="Two", filters={"read_only": False}),
        member_ids=pv_sets.pv_ids(["L:001:SP", "L:002:SP"]),
        actor=None,
        via=AuditVia.PAGE,
    )
    client.force_login(operator_user)
    form = client.get(reverse("pvs:pv_set_edit", args=[pv_set.pk])).context["form"]
    assert form.initial["pv_list"] == "L:001:SP\nL:002:SP" and form.initial["read_only"] == "false"
    response = client.post(
        reverse("pvs:pv_set_edit", args=[pv_set.pk]), form_data(name="Two", description="Changed", pv_list="L:002:SP")
    )
    assert response.status_code == 302
    pv_set.refresh_from_db()
    assert (pv_set.description, pv_set.filters, pv_sets.member_addresses(pv_set)) == ("Changed", {}, ["L:002:SP"])
    entry = AuditEntry.objects.latest("pk")
    assert entry.action == AuditAction.PV_SET_CHANGED
    assert set(entry.details["changed"]) == {"description", "filters", "pvs"}


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"pv_list": "L:001:SP\nNO:SUCH:PV"}, "Not in the registry: NO:SUCH:PV."),
        ({"pv_list": "L:001:SP 'bad'"}, "Not valid addresses"),
        ({}, "this set would select no PV"),
        ({"name": "", "pv_list": "L:001:SP"}, "This field is required."),
        ({"tag": ["999999"]}, "Select a valid choice"),
        ({"read_only": "maybe"}, "Select a valid choice"),
        ({"name": "x" * 101, "pv_list": "L:001:SP"}, "at most 100 characters"),
    ],
)
def test_hostile_input_is_a_form_error_and_stores_nothing(client, operator_user, registry, fields, error):
    client.force_login(operator_user)
    response = client.post(reverse("pvs:pv_set_new"), form_data(**fields))
    assert response.status_code == 400
    assert error in response.text
    assert not PVSet.objects.exists() and not AuditEntry.objects.exists()


def test_a_name_in_use_is_a_form_error(client, operator_user, registry):
    pv_sets.save_pv_set(PVSet(name="Linac quads", filters={"device": "QUAD"}), actor=None, via=AuditVia.PAGE)
    client.force_login(operator_user)
    response = client.post(reverse("pvs:pv_set_new"), form_data(device="QUAD"))
    assert response.status_code == 400 and "already exists" in response.text
    assert PVSet.objects.count() == 1


def test_a_viewer_reads_sets_but_cannot_create_edit_or_delete(client, viewer, registry):
    pv_set = pv_sets.save_pv_set(PVSet(name="Quads", filters={"device": "QUAD"}), actor=None, via=AuditVia.PAGE)
    client.force_login(viewer)
    listing = client.get(reverse("pvs:pv_sets"))
    assert listing.status_code == 200 and "Quads" in listing.text and "New PV set" not in listing.text
    assert "PVs of devices starting with “QUAD”" in listing.text
    page = client.get(reverse("pvs:pv_set", args=[pv_set.pk]))
    assert page.status_code == 200 and ">Edit<" not in page.text
    assert client.get(reverse("pvs:pv_set_new")).status_code == 403
    assert client.post(reverse("pvs:pv_set_new"), form_data(device="QUAD")).status_code == 403
    assert client.post(reverse("pvs:pv_set_edit", args=[pv_set.pk]), form_data(device="X")).status_code == 403
    assert client.get(reverse("pvs:pv_set_delete", args=[pv_set.pk])).status_code == 403
    assert client.post(reverse("pvs:pv_set_delete", args=[pv_set.pk])).status_code == 403
    assert PVSet.objects.get().filters == {"device": "QUAD"}


def test_anonymous_users_are_sent_to_log_in(client):
    response = client.get(reverse("pvs:pv_sets"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_an_operator_deletes_a_set(client, operator_user, registry):
    pv_set = pv_sets.save_pv_set(PVSet(name="Quads", filters={"device": "QUAD"}), actor=None, via=AuditVia.PAGE)
    client.force_login(operator_user)
    assert "Delete the set" in client.get(reverse("pvs:pv_set_delete", args=[pv_set.pk])).text
    assert PVSet.objects.exists()
    response = client.post(reverse("pvs:pv_set_delete", args=[pv_set.pk]), follow=True)
    assert "PV set “Quads” deleted." in response.text
    assert not PVSet.objects.exists() and PV.objects.count() == 150
    assert AuditEntry.objects.latest("pk").action == AuditAction.PV_SET_DELETED


def test_a_set_whose_tag_was_deleted_says_so_on_its_page(client, operator_user, registry):
    pv_set = pv_sets.save_pv_set(PVSet(name="LI20", filters={"tag": [registry.pk]}), actor=None, via=AuditVia.PAGE)
    registry.delete()
    client.force_login(operator_user)
    page = client.get(reverse("pvs:pv_set", args=[pv_set.pk]))
    assert page.status_code == 200 and "no longer valid" in page.text


def test_preview_counts_the_pvs_without_saving(client, operator_user, registry):
    client.force_login(operator_user)
    response = client.post(reverse("pvs:pv_set_new"), form_data(device="QUAD:1", pv_list="L:000:SP", preview="1"))
    assert response.status_code == 200
    assert "the set holds <strong>51</strong> PVs (not saved yet)" in response.text
    assert not PVSet.objects.exists() and not AuditEntry.objects.exists()


def test_the_live_table_filters_by_a_set(client, viewer, registry):
    pv_set = pv_sets.save_pv_set(
        PVSet(name="Two", filters={}), member_ids=pv_sets.pv_ids(["L:005:SP", "L:006:SP"]), actor=None, via="page"
    )
    client.force_login(viewer)
    page = client.get(reverse("pvs:live"))
    assert f'<option value="{pv_set.pk}">Two</option>' in page.text
    response = client.get(reverse("pvs:live"), {"pv_set": pv_set.pk})
    assert [pv.setpoint_address for pv in response.context["page"].rows] == ["L:005:SP", "L:006:SP"]
