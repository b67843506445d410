"""The PV set API: CRUD, the explicit list changed in bulk, the resolved PVs, permissions and refusals
(a clear 400 and nothing stored)."""

import json

import pytest
from django.conf import settings as django_settings

from pvs.models import PV, PVSet
from snapshots.models import RestorePreview
from squirrel_site.audit import AuditAction, AuditVia
from squirrel_site.models import AuditEntry
from tags.models import Tag, TagGroup

pytestmark = pytest.mark.django_db

SETS = "/api/v1/pv-sets/"


def send(client, method: str, url: str, body) -> object:
    data = body if isinstance(body, str) else json.dumps(body)
    return getattr(client, method)(url, data, content_type="application/json")


def invalid(response) -> dict:
    assert response.status_code == 400, response.content
    return response.json()["error"]


@pytest.fixture
def registry():
    magnets = Tag.objects.create(group=TagGroup.objects.create(name="System"), name="Magnets")
    pvs = [PV.objects.create(setpoint_address=f"LI:Q{i}:SP", device=f"Q{i}") for i in range(1, 6)]
    magnets.pvs.add(pvs[0], pvs[1])
    return {"magnets": magnets, "pvs": pvs}


@pytest.fixture
def as_operator(client, operator_user):
    client.force_login(operator_user)
    return client


def test_create_read_change_and_delete_a_set(as_operator, registry, operator_user):
    magnets = registry["magnets"].pk
    body = {"name": "Quads", "description": "LINAC quads", "filters": {"tag": [magnets]}, "pvs": ["LI:Q5:SP"]}
    created = send(as_operator, "post", SETS, body)
    assert created.status_code == 201, created.content
    pv_set = created.json()
    assert (pv_set["filters"], pv_set["pvs"], pv_set["listed_count"], pv_set["created_by"]) == (
        {"tag": [magnets]},
        ["LI:Q5:SP"],
        1,
        operator_user.username,
    )
    url = f"{SETS}{pv_set['id']}/"
    resolved = as_operator.get(f"{url}pvs/").json()["results"]
    assert [pv["setpoint_address"] for pv in resolved] == ["LI:Q1:SP", "LI:Q2:SP", "LI:Q5:SP"]

    changed = send(as_operator, "patch", url, {"pvs": ["LI:Q3:SP", "LI:Q4:SP"], "filters": {}})
    assert changed.status_code == 200, changed.content
    assert (changed.json()["pvs"], changed.json()["listed_count"]) == (["LI:Q3:SP", "LI:Q4:SP"], 2)
    listing = as_operator.get(SETS).json()["results"]
    assert [(item["name"], item["listed_count"]) for item in listing] == [("Quads", 2)]
    assert "pvs" not in listing[0]  # a list leaves out explicit lists: one may hold the whole registry

    assert as_operator.delete(url).status_code == 204
    assert not PVSet.objects.exists()
    actions = list(AuditEntry.objects.order_by("pk").values_list("action", "via"))
    assert actions == [
        (AuditAction.PV_SET_CREATED, AuditVia.API),
        (AuditAction.PV_SET_CHANGED, AuditVia.API),
        (AuditAction.PV_SET_DELETED, AuditVia.API),
    ]


def test_members_are_added_and_removed_by_address_in_one_request(as_operator, registry):
    pv_set = send(as_operator, "post", SETS, {"name": "S", "pvs": ["LI:Q1:SP"]}).json()
    url = f"{SETS}{pv_set['id']}/members/"
    response = send(as_operator, "post", url, {"add": ["LI:Q2:SP", "LI:Q3:SP"], "remove": ["LI:Q1:SP"]})
    assert response.json() == {"added": 2, "removed": 1}
    assert as_operator.get(f"{SETS}{pv_set['id']}/").json()["pvs"] == ["LI:Q2:SP", "LI:Q3:SP"]
    error = invalid(send(as_operator, "post", url, {"add": ["NO:SUCH:PV"]}))
    assert "Not in the registry: NO:SUCH:PV." in json.dumps(error)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": "S", "pvs": ["LI:Q1:SP", "NO:SUCH:PV"]}, "Not in the registry: NO:SUCH:PV."),
        ({"name": "S", "pvs": ["bad address"]}, "Not valid addresses"),
        ({"name": "S", "pvs": "LI:Q1:SP"}, "Expected a list"),
        ({"name": "S", "filters": {"colour": "red"}}, "Unknown filters: colour."),
        ({"name": "S", "filters": {"tag": [999999]}}, "valid choice"),
        ({"name": "S", "filters": {"pv_set": 1}}, "Unknown filters: pv_set."),
        ({"name": "S"}, "this set would select no PV"),
        ({"name": "", "pvs": ["LI:Q1:SP"]}, "may not be blank"),
        ({"name": "x" * 101, "pvs": ["LI:Q1:SP"]}, "no more than 100 characters"),
        ({"name": "S", "pvs": ["LI:Q1:SP"] * (django_settings.API_MAX_ITEMS + 1)}, "Give at most"),
    ],
)
def test_hostile_input_is_a_clear_400_and_stores_nothing(as_operator, registry, body, message):
    error = invalid(send(as_operator, "post", SETS, body))
    assert message in json.dumps(error, ensure_ascii=False)
    assert not PVSet.objects.exists() and not AuditEntry.objects.exists()


def test_a_taken_name_is_refused(as_operator, registry):
    send(as_operator, "post", SETS, {"name": "S", "pvs": ["LI:Q1:SP"]})
    error = invalid(send(as_operator, "post", SETS, {"name": "S", "pvs": ["LI:Q2:SP"]}))
    assert "already exists" in json.dumps(error)
    assert PVSet.objects.count() == 1


def test_a_viewer_reads_but_may_not_write(client, viewer, operator_user, registry):
    client.force_login(operator_user)
    pv_set = send(client, "post", SETS, {"name": "S", "pvs": ["LI:Q1:SP"]}).json()
    client.force_login(viewer)
    url = f"{SETS}{pv_set['id']}/"
    assert client.get(url).status_code == 200 and client.get(f"{url}pvs/").status_code == 200
    assert send(client, "post", SETS, {"name": "T", "pvs": ["LI:Q1:SP"]}).status_code == 403
    assert send(client, "patch", url, {"description": "x"}).status_code == 403
    assert send(client, "post", f"{url}members/", {"add": ["LI:Q2:SP"]}).status_code == 403
    assert client.delete(url).status_code == 403
    assert PVSet.objects.get().description == ""


def test_anonymous_requests_are_401(client):
    assert client.get(SETS).status_code == 401


def test_a_snapshot_job_and_a_pv_list_take_a_set(as_operator, registry):
    pv_set = send(as_operator, "post", SETS, {"name": "S", "pvs": ["LI:Q3:SP"]}).json()
    pvs = as_operator.get("/api/v1/pvs/", {"pv_set": pv_set["id"]}).json()["results"]
    assert [pv["setpoint_address"] for pv in pvs] == ["LI:Q3:SP"]
    job = send(as_operator, "post", "/api/v1/snapshots/", {"title": "t", "selection": {"pv_set": pv_set["id"]}})
    assert job.status_code == 202, job.content
    assert invalid(send(as_operator, "post", "/api/v1/snapshots/", {"title": "t", "selection": {"pv_set": 999999}}))


def test_a_restore_preview_takes_only_the_pvs_of_a_set(as_operator, make_pvs, make_snapshot, live_values):
    make_pvs("S:A", "S:B")
    snapshot = make_snapshot("Saved", {"S:A": 1.0, "S:B": 2.0})
    live_values({"S:A": 5.0, "S:B": 6.0})
    pv_set = send(as_operator, "post", SETS, {"name": "A", "pvs": ["S:A"]}).json()
    body = {"snapshot": snapshot.pk, "selection": {"pv_set": pv_set["id"]}}
    response = send(as_operator, "post", "/api/v1/restore-previews/", body)
    assert response.status_code == 201, response.content
    preview = RestorePreview.objects.get()
    assert list(preview.items.values_list("pv_name", flat=True)) == ["S:A"]
