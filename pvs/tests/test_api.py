"""The PV API: CRUD, filters, bulk endpoints (all or nothing), bad input, permissions, audit."""

import json

import pytest
from django.conf import settings as django_settings
from knox.models import AuthToken
from rest_framework import serializers

from pvs import services
from pvs.api.serializers import PVChangeSerializer, PVSerializer
from pvs.models import PV
from squirrel_site.models import AuditEntry
from tags.models import Tag, TagGroup

pytestmark = pytest.mark.django_db

PVS = "/api/v1/pvs/"
BULK = "/api/v1/pvs/bulk/"
BULK_DELETE = "/api/v1/pvs/bulk-delete/"
# One more item than a list in a request may hold (squirrel_site.limits).
TOO_MANY = django_settings.API_MAX_ITEMS + 1
TOO_MANY_MESSAGE = f"Give at most {django_settings.API_MAX_ITEMS} items."


def send(client, method: str, url: str, body) -> object:
    """A JSON request; `body` is sent as is when it is already a string (malformed JSON)."""
    data = body if isinstance(body, str) else json.dumps(body)
    return getattr(client, method)(url, data, content_type="application/json")


@pytest.fixture
def as_editor(client, editor):
    client.force_login(editor)
    return client


@pytest.fixture
def tagged_pvs():
    """Three PVs: Q1 (LINAC, Magnets), Q2 (LINAC), BPM1 (UND, read-only), each with a device."""
    area, system = TagGroup.objects.create(name="Area"), TagGroup.objects.create(name="System")
    tags = {
        "linac": Tag.objects.create(group=area, name="LINAC"),
        "und": Tag.objects.create(group=area, name="UND"),
        "magnets": Tag.objects.create(group=system, name="Magnets"),
    }
    q1 = PV.objects.create(
        setpoint_address="LI:Q1:SP", readback_address="LI:Q1:RB", device="Q1", description="quad one"
    )
    q2 = PV.objects.create(setpoint_address="LI:Q2:SP", device="Q2")
    bpm = PV.objects.create(setpoint_address="UN:BPM1:X", device="BPM1", read_only=True)
    q1.tags.add(tags["linac"], tags["magnets"])
    q2.tags.add(tags["linac"])
    bpm.tags.add(tags["und"])
    return {"q1": q1, "q2": q2, "bpm": bpm, "area": area, **tags}


def invalid(response) -> dict[str, list[str]]:
    """The messages of a refused request by dotted field path (the error envelope's `fields`)."""
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid", error
    return error["fields"]


def addresses(response) -> list[str]:
    return [pv["setpoint_address"] for pv in response.json()["results"]]


def entries() -> list[tuple[str, str, str]]:
    return [(entry.action, entry.via, entry.summary) for entry in AuditEntry.objects.order_by("id")]


# --- Authentication --------------------------------------------------------------------------


def test_anonymous_requests_get_401(client, tagged_pvs):
    assert client.get(PVS).status_code == 401
    assert send(client, "post", BULK, [{"setpoint_address": "A:1"}]).status_code == 401


def test_a_token_authenticates_a_script(client, editor, tagged_pvs):
    _, token = AuthToken.objects.create(editor)
    response = client.get(PVS, headers={"Authorization": f"Token {token}"})
    assert response.status_code == 200 and len(response.json()["results"]) == 3


# --- Reading ---------------------------------------------------------------------------------


def test_list_shows_fields_tag_ids_and_labels(as_editor, tagged_pvs):
    first = as_editor.get(PVS).json()["results"][0]
    assert first["setpoint_address"] == "LI:Q1:SP" and first["readback_address"] == "LI:Q1:RB"
    assert first["tags"] == sorted([tagged_pvs["linac"].id, tagged_pvs["magnets"].id])
    assert sorted(first["tag_labels"]) == ["Area: LINAC", "System: Magnets"]
    assert {"abs_tolerance", "rel_tolerance", "read_only", "restore_stage", "wait_for_completion"} <= first.keys()


def test_list_costs_a_fixed_number_of_queries(as_editor, tagged_pvs, django_assert_num_queries):
    PV.tags.through.objects.bulk_create(
        PV.tags.through(pv_id=pv.id, tag_id=tagged_pvs["und"].id)
        for pv in PV.objects.bulk_create(PV(setpoint_address=f"MORE:{i}") for i in range(50))
    )
    # Session, user, the user's and the groups' permissions, the page, its tags with groups.
    with django_assert_num_queries(6):
        response = as_editor.get(PVS)
    assert len(response.json()["results"]) == 53


def test_list_pages_with_a_cursor_and_never_counts(as_editor, tagged_pvs):
    first = as_editor.get(PVS, {"page_size": 2}).json()
    assert "count" not in first and len(first["results"]) == 2
    second = as_editor.get(first["next"]).json()
    assert [pv["setpoint_address"] for pv in second["results"]] == ["UN:BPM1:X"] and second["next"] is None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"search": "quad"}, ["LI:Q1:SP"]),
        ({"search": "Q1:RB"}, ["LI:Q1:SP"]),
        ({"device": "q"}, ["LI:Q1:SP", "LI:Q2:SP"]),
        ({"read_only": "true"}, ["UN:BPM1:X"]),
        ({"read_only": "false"}, ["LI:Q1:SP", "LI:Q2:SP"]),
        ({"pv": ["LI:Q2:SP", "UN:BPM1:X"]}, ["LI:Q2:SP", "UN:BPM1:X"]),
    ],
)
def test_list_filters(as_editor, tagged_pvs, query, expected):
    assert addresses(as_editor.get(PVS, query)) == expected


def test_list_filters_by_every_tag_given(as_editor, tagged_pvs):
    assert addresses(as_editor.get(PVS, {"tag": [tagged_pvs["linac"].id]})) == ["LI:Q1:SP", "LI:Q2:SP"]
    assert addresses(as_editor.get(PVS, {"tag": [tagged_pvs["linac"].id, tagged_pvs["magnets"].id]})) == ["LI:Q1:SP"]


def test_list_filters_by_tag_group(as_editor, tagged_pvs):
    response = as_editor.get(PVS, {"tag_group": tagged_pvs["area"].id})
    assert addresses(response) == ["LI:Q1:SP", "LI:Q2:SP", "UN:BPM1:X"]


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"tag": "abc"}, "tag", "“abc” is not a valid value."),
        ({"pv": "BAD NAME"}, "pv", "'BAD NAME': The address contains whitespace."),
        ({"read_only": "maybe"}, "read_only", "Enter true or false."),
    ],
)
def test_an_invalid_filter_is_a_400_naming_it(as_editor, tagged_pvs, query, field, message):
    assert invalid(as_editor.get(PVS, query)) == {field: [message]}


def test_retrieve_one_pv(as_editor, tagged_pvs):
    response = as_editor.get(f"{PVS}{tagged_pvs['bpm'].id}/")
    assert response.status_code == 200
    assert (response.json()["setpoint_address"], response.json()["read_only"]) == ("UN:BPM1:X", True)


# --- Creating, changing, deleting one PV -----------------------------------------------------


def test_create_returns_the_pv_with_defaults_and_tags(as_editor, tagged_pvs):
    body = {"setpoint_address": "NEW:A", "abs_tolerance": "0.5", "tags": [tagged_pvs["und"].id]}
    response = send(as_editor, "post", PVS, body)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["setpoint_address"], body["abs_tolerance"], body["rel_tolerance"], body["read_only"]) == (
        "NEW:A",
        0.5,
        0.0,
        False,
    )
    assert (body["tags"], body["tag_labels"]) == ([tagged_pvs["und"].id], ["Area: UND"])
    assert PV.objects.get(pk=body["id"]).tags.get() == tagged_pvs["und"]


def test_create_keeps_the_description_exactly(as_editor, db):
    response = send(as_editor, "post", PVS, {"setpoint_address": "NEW:A", "description": "  two  spaces "})
    assert response.json()["description"] == "  two  spaces "


def test_a_repeated_tag_id_counts_once(as_editor, tagged_pvs):
    response = send(as_editor, "post", PVS, {"setpoint_address": "NEW:A", "tags": [tagged_pvs["und"].id] * 2})
    assert response.json()["tags"] == [tagged_pvs["und"].id]


def test_put_sets_the_given_fields_and_replaces_the_tags(as_editor, tagged_pvs):
    pv = tagged_pvs["q1"]
    body = {"setpoint_address": "LI:Q1:SP", "device": "QUAD1", "abs_tolerance": 0.1, "tags": [tagged_pvs["und"].id]}
    response = send(as_editor, "put", f"{PVS}{pv.id}/", body)
    assert response.status_code == 200, response.json()
    pv.refresh_from_db()
    assert (pv.device, pv.abs_tolerance, pv.readback_address) == ("QUAD1", 0.1, "LI:Q1:RB")
    assert list(pv.tags.all()) == [tagged_pvs["und"]]
    assert response.json()["tag_labels"] == ["Area: UND"]


def test_put_needs_the_setpoint_address(as_editor, tagged_pvs):
    response = send(as_editor, "put", f"{PVS}{tagged_pvs['q1'].id}/", {"device": "X"})
    assert invalid(response) == {"setpoint_address": ["This field is required."]}


def test_patch_changes_only_the_given_fields(as_editor, tagged_pvs):
    response = send(as_editor, "patch", f"{PVS}{tagged_pvs['q1'].id}/", {"read_only": True})
    assert response.status_code == 200
    pv = PV.objects.get(pk=tagged_pvs["q1"].pk)
    assert (pv.read_only, pv.device, pv.tags.count()) == (True, "Q1", 2)


def test_patch_may_repeat_the_pvs_own_address(as_editor, tagged_pvs):
    response = send(as_editor, "patch", f"{PVS}{tagged_pvs['q1'].id}/", {"setpoint_address": "LI:Q1:SP"})
    assert response.status_code == 200


def test_patch_to_another_pvs_address_is_a_field_error(as_editor, tagged_pvs):
    response = send(as_editor, "patch", f"{PVS}{tagged_pvs['q1'].id}/", {"setpoint_address": "LI:Q2:SP"})
    assert invalid(response) == {"setpoint_address": [f"PV {tagged_pvs['q2'].id} has this setpoint address."]}


def test_patch_an_unknown_pv_is_a_404(as_editor, tagged_pvs):
    assert send(as_editor, "patch", f"{PVS}999999/", {"device": "X"}).status_code == 404


def test_delete_removes_the_pv(as_editor, tagged_pvs):
    assert as_editor.delete(f"{PVS}{tagged_pvs['q2'].id}/").status_code == 204
    assert not PV.objects.filter(pk=tagged_pvs["q2"].pk).exists()


# --- Bad input: one field-level message each ---------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"setpoint_address": "BAD NAME"}, "setpoint_address", "The address contains whitespace."),
        ({"setpoint_address": "SIM:AO1.val"}, "setpoint_address", "upper-case"),
        ({"setpoint_address": "A" * 61}, "setpoint_address", "longer than 60"),
        ({"setpoint_address": 'SIM:"Q"'}, "setpoint_address", "quote"),
        ({"setpoint_address": ""}, "setpoint_address", "may not be blank"),
        ({"setpoint_address": None}, "setpoint_address", "may not be null"),
        ({"setpoint_address": ["A:1"]}, "setpoint_address", "Not a valid string"),
        ({"readback_address": "R B"}, "readback_address", "whitespace"),
        ({"config_address": "C\x07"}, "config_address", "control character"),
        ({"abs_tolerance": -0.1}, "abs_tolerance", "may not be negative"),
        ({"rel_tolerance": "NaN"}, "rel_tolerance", "finite number"),
        ({"abs_tolerance": "Infinity"}, "abs_tolerance", "finite number"),
        ({"abs_tolerance": "-inf"}, "abs_tolerance", "finite number"),
        ({"abs_tolerance": "lots"}, "abs_tolerance", "valid number"),
        ({"abs_tolerance": True}, "abs_tolerance", "valid number"),
        ({"abs_tolerance": [1]}, "abs_tolerance", "valid number"),
        ({"read_only": "maybe"}, "read_only", "valid boolean"),
        ({"wait_for_completion": 2}, "wait_for_completion", "valid boolean"),
        ({"restore_stage": -1}, "restore_stage", "greater than or equal to 0"),
        ({"restore_stage": 40000}, "restore_stage", "less than or equal to 32767"),
        ({"restore_stage": 1.5}, "restore_stage", "valid integer"),
        ({"restore_stage": True}, "restore_stage", "valid integer"),
        ({"device": "D" * 101}, "device", "no more than 100 characters"),
        ({"description": "d" * 1001}, "description", "no more than 1000 characters"),
        ({"description": {"text": "x"}}, "description", "Not a valid string"),
        ({"tags": "LINAC"}, "tags", "Expected a list"),
        ({"tags": ["LINAC"]}, "tags.0", "valid integer"),
        ({"tags": [999999]}, "tags", "No tag with id 999999."),
        ({"tags": [1] * TOO_MANY}, "tags", TOO_MANY_MESSAGE),
    ],
)
def test_bad_field_is_a_400_with_its_message(as_editor, db, fields, field, message):
    errors = invalid(send(as_editor, "post", PVS, {"setpoint_address": "NEW:A", **fields}))
    assert list(errors) == [field] and len(errors[field]) == 1 and message in errors[field][0]
    assert not PV.objects.exists()


@pytest.mark.parametrize(
    ("method", "url", "body", "field"),
    [
        ("post", PVS, {"setpoint_address": "NEW:A", "tags": [2**63]}, "tags.0"),
        ("patch", BULK, [{"id": 2**63, "device": "X"}], "0.id"),
        ("post", BULK_DELETE, {"ids": [2**63]}, "ids.0"),
    ],
)
def test_an_id_too_large_for_a_bigint_is_a_field_error(as_editor, tagged_pvs, method, url, body, field):
    # Such an id used to reach PostgreSQL ("out of range for type bigint"): a 500.
    response = send(as_editor, method, url, body)
    assert invalid(response) == {field: [f"Ensure this value is less than or equal to {2**63 - 1}."]}


def test_infinity_written_as_a_json_number_is_refused(as_editor, db):
    response = send(as_editor, "post", PVS, '{"setpoint_address": "NEW:A", "abs_tolerance": 1e999}')
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "parse_error" and "the number 1e999 is out of range" in error["message"]


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_bare_nan_and_infinity_tokens_are_a_parse_error(as_editor, db, token):
    response = send(as_editor, "post", PVS, f'{{"setpoint_address": "NEW:A", "abs_tolerance": {token}}}')
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "parse_error" and error["message"].startswith("JSON parse error")
    assert not PV.objects.exists()


def test_a_duplicate_setpoint_address_is_a_field_error(as_editor, tagged_pvs):
    response = send(as_editor, "post", PVS, {"setpoint_address": "LI:Q1:SP"})
    assert invalid(response) == {"setpoint_address": [f"PV {tagged_pvs['q1'].id} has this setpoint address."]}


def test_several_bad_fields_are_reported_together(as_editor, db):
    response = send(as_editor, "post", PVS, {"setpoint_address": "A B", "abs_tolerance": -1, "read_only": "x"})
    assert invalid(response) == {
        "setpoint_address": ["The address contains whitespace."],
        "abs_tolerance": ["The tolerance may not be negative."],
        "read_only": ["Must be a valid boolean."],
    }


# --- Bulk create -----------------------------------------------------------------------------


ITEMS = [
    {"setpoint_address": "NEW:A"},
    {
        "setpoint_address": " NEW:B ",
        "description": " kept ",
        "abs_tolerance": "0.5",
        "read_only": "true",
        "tags": [2, 2],
    },
    {"setpoint_address": "NEW:C", "readback_address": "", "restore_stage": "3", "unknown": "ignored", "id": 7},
    {"device": "no address"},
    {"setpoint_address": None, "abs_tolerance": "NaN", "rel_tolerance": True, "tags": "x"},
    {"setpoint_address": "BAD NAME", "read_only": "maybe", "restore_stage": -1, "description": "d" * 1001},
    {"id": 3, "device": "D"},
    {"id": None},
    {"id": "x", "setpoint_address": "A.b"},
    {},
    None,
    "NEW:D",
    ["NEW:E"],
]


def _outcome(validate, item):
    try:
        return "valid", validate(item)
    except serializers.ValidationError as error:
        return "invalid", error.detail


@pytest.mark.parametrize(
    "make",
    [lambda: PVSerializer(many=True), lambda: PVChangeSerializer(many=True)],
    ids=["create", "update"],
)
@pytest.mark.parametrize("item", ITEMS)
def test_bulk_item_validation_agrees_with_drf(db, make, item):
    items = make()
    assert _outcome(items.item_validator(), item) == _outcome(items.child.run_validation, item)


def test_bulk_create_returns_the_ids_in_item_order(as_editor, tagged_pvs):
    items = [
        {"setpoint_address": "NEW:B", "tags": [tagged_pvs["und"].id]},
        {"setpoint_address": "NEW:A", "read_only": True},
    ]
    response = send(as_editor, "post", BULK, items)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["created"] == 2
    assert [PV.objects.get(pk=pv_id).setpoint_address for pv_id in body["ids"]] == ["NEW:B", "NEW:A"]
    assert PV.objects.get(setpoint_address="NEW:A").read_only
    assert PV.objects.get(setpoint_address="NEW:B").tags.get() == tagged_pvs["und"]


def test_bulk_create_with_one_bad_item_in_the_middle_stores_nothing(as_editor, tagged_pvs):
    items = [{"setpoint_address": f"NEW:{i}"} for i in range(5)]
    items[2]["abs_tolerance"] = "NaN"
    response = send(as_editor, "post", BULK, items)
    assert invalid(response) == {"2.abs_tolerance": ["A finite number is required, not NaN or infinity."]}
    assert PV.objects.count() == 3 and not AuditEntry.objects.exists()


def test_bulk_create_reports_every_bad_item_by_index_and_field(as_editor, tagged_pvs):
    items = [
        {"setpoint_address": "NEW:0"},
        {"setpoint_address": "LI:Q1:SP"},
        {"setpoint_address": "NEW:0"},
        {"setpoint_address": "NEW 3", "tags": [999999]},
        "NEW:4",
        {"setpoint_address": "NEW:5", "tags": [999999]},
    ]
    assert invalid(send(as_editor, "post", BULK, items)) == {
        "1.setpoint_address": [f"PV {tagged_pvs['q1'].id} has this setpoint address."],
        "2.setpoint_address": ["Item 0 has this setpoint address too."],
        "3.setpoint_address": ["The address contains whitespace."],
        "4": ["Invalid data. Expected a dictionary, but got str."],
        "5.tags": ["No tag with id 999999."],
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"setpoint_address": "NEW:A"}, "Send a JSON array of PVs."),
        ([], "The array is empty."),
        ("null", "No data provided"),
    ],
)
def test_bulk_create_needs_a_non_empty_array(as_editor, db, body, message):
    assert invalid(send(as_editor, "post", BULK, body)) == {"non_field_errors": [message]}


def test_bulk_create_refuses_more_items_than_the_limit(as_editor, db):
    response = send(as_editor, "post", BULK, [{"setpoint_address": f"NEW:{i}"} for i in range(TOO_MANY)])
    assert invalid(response) == {"non_field_errors": [TOO_MANY_MESSAGE]}
    assert not PV.objects.exists()


def test_bulk_create_costs_a_fixed_number_of_queries(as_editor, tagged_pvs, django_assert_max_num_queries):
    items = [{"setpoint_address": f"NEW:{i}", "tags": [tagged_pvs["und"].id]} for i in range(1000)]
    with django_assert_max_num_queries(14):
        assert send(as_editor, "post", BULK, items).status_code == 201
    assert tagged_pvs["und"].pvs.count() == 1001


def test_bulk_create_is_one_audit_entry(as_editor, editor, db):
    send(as_editor, "post", BULK, [{"setpoint_address": f"NEW:{i}"} for i in range(3)])
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.via, entry.actor, entry.details) == (
        "pvs.created",
        "api",
        editor,
        {"count": 3, "addresses": ["NEW:0", "NEW:1", "NEW:2"]},
    )


# --- Bulk update -----------------------------------------------------------------------------


def test_bulk_update_changes_only_the_given_fields_of_each_pv(as_editor, tagged_pvs):
    items = [
        {"id": tagged_pvs["q1"].id, "abs_tolerance": 0.5},
        {"id": tagged_pvs["q2"].id, "device": "QUAD2", "tags": []},
        {"id": tagged_pvs["bpm"].id, "read_only": True},
    ]
    response = send(as_editor, "patch", BULK, items)
    assert response.status_code == 200, response.json()
    assert response.json() == {"updated": 2, "unchanged": 1}
    q1, q2 = PV.objects.get(pk=tagged_pvs["q1"].pk), PV.objects.get(pk=tagged_pvs["q2"].pk)
    assert (q1.abs_tolerance, q1.device, q1.tags.count()) == (0.5, "Q1", 2)
    assert (q2.device, q2.tags.count()) == ("QUAD2", 0)


def test_bulk_update_with_an_unknown_id_changes_nothing(as_editor, tagged_pvs):
    items = [
        {"id": tagged_pvs["q1"].id, "device": "X"},
        {"id": 999999, "device": "Y"},
        {"id": tagged_pvs["q2"].id, "device": "Z"},
    ]
    assert invalid(send(as_editor, "patch", BULK, items)) == {"1.id": ["No PV with id 999999."]}
    assert sorted(PV.objects.values_list("device", flat=True)) == ["BPM1", "Q1", "Q2"]


@pytest.mark.parametrize(
    ("item", "field", "message"),
    [
        ({"device": "X"}, "id", "This field is required."),
        ({"id": "one", "device": "X"}, "id", "A valid integer is required."),
        ({"id": None}, "id", "This field may not be null."),
        ({"id": 1, "setpoint_address": "A B"}, "setpoint_address", "The address contains whitespace."),
        ({"id": 1, "rel_tolerance": "-Infinity"}, "rel_tolerance", "A finite number is required, not NaN or infinity."),
    ],
)
def test_bulk_update_item_errors_are_keyed_by_index_and_field(as_editor, tagged_pvs, item, field, message):
    response = send(as_editor, "patch", BULK, [{"id": tagged_pvs["q1"].id}, item])
    assert invalid(response) == {f"1.{field}": [message]}


def test_bulk_update_cannot_give_a_pv_an_address_another_keeps(as_editor, tagged_pvs):
    response = send(as_editor, "patch", BULK, [{"id": tagged_pvs["q2"].id, "setpoint_address": "LI:Q1:SP"}])
    assert invalid(response) == {"0.setpoint_address": [f"PV {tagged_pvs['q1'].id} has this setpoint address."]}


def test_bulk_update_refuses_more_items_than_the_limit(as_editor, tagged_pvs):
    items = [{"id": tagged_pvs["q1"].id, "device": "X"}] * TOO_MANY
    assert invalid(send(as_editor, "patch", BULK, items)) == {"non_field_errors": [TOO_MANY_MESSAGE]}
    assert not PV.objects.filter(device="X").exists()


def test_bulk_update_is_one_audit_entry(as_editor, tagged_pvs):
    send(as_editor, "patch", BULK, [{"id": pv.id, "restore_stage": 2} for pv in PV.objects.all()])
    assert entries() == [("pvs.changed", "api", "Changed 3 PVs")]
    assert AuditEntry.objects.get().details["fields"] == ["restore_stage"]


# --- Bulk delete -----------------------------------------------------------------------------


def test_bulk_delete_removes_the_given_pvs(as_editor, tagged_pvs):
    response = send(as_editor, "post", BULK_DELETE, {"ids": [tagged_pvs["q1"].id, tagged_pvs["bpm"].id]})
    assert response.status_code == 200 and response.json() == {"deleted": 2}
    assert list(PV.objects.values_list("setpoint_address", flat=True)) == ["LI:Q2:SP"]
    assert entries() == [("pvs.deleted", "api", "Deleted 2 PVs")]


def test_bulk_delete_with_an_unknown_id_deletes_nothing(as_editor, tagged_pvs):
    response = send(as_editor, "post", BULK_DELETE, {"ids": [tagged_pvs["q1"].id, 999999]})
    assert invalid(response) == {"ids.1": ["No PV with id 999999."]}
    assert PV.objects.count() == 3 and not AuditEntry.objects.exists()


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({}, "ids", "This field is required."),
        ({"ids": []}, "ids", "This list may not be empty."),
        ({"ids": "1,2"}, "ids", 'Expected a list of items but got type "str".'),
        ({"ids": ["x"]}, "ids.0", "A valid integer is required."),
    ],
)
def test_bulk_delete_needs_a_list_of_ids(as_editor, tagged_pvs, body, field, message):
    assert invalid(send(as_editor, "post", BULK_DELETE, body)) == {field: [message]}


def test_bulk_delete_refuses_more_ids_than_the_limit(as_editor, tagged_pvs):
    response = send(as_editor, "post", BULK_DELETE, {"ids": [tagged_pvs["q1"].id] * TOO_MANY})
    assert invalid(response) == {"ids": [TOO_MANY_MESSAGE]}
    assert PV.objects.count() == 3


# --- Races -----------------------------------------------------------------------------------


def test_a_pv_created_by_someone_else_after_validation_is_a_409(as_editor, tagged_pvs, monkeypatch):
    monkeypatch.setattr(services, "registry_problems", lambda items: {})
    response = send(as_editor, "post", BULK, [{"setpoint_address": "NEW:A"}, {"setpoint_address": "LI:Q1:SP"}])
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "conflict" and error["message"].startswith("The registry changed during the request")
    assert error["message"].endswith("nothing was stored.") and error["fields"] == {}
    assert not PV.objects.filter(setpoint_address="NEW:A").exists() and not AuditEntry.objects.exists()


# --- Permissions -----------------------------------------------------------------------------


WRITES = [
    ("post", PVS, {"setpoint_address": "NEW:A"}),
    ("post", BULK, [{"setpoint_address": "NEW:A"}]),
    ("patch", BULK, [{"id": 1, "device": "X"}]),
    ("post", BULK_DELETE, {"ids": [1]}),
]


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_viewers_and_operators_read_but_cannot_curate(client, make_user, tagged_pvs, role):
    client.force_login(make_user(role))
    assert client.get(PVS).status_code == 200
    pv_url = f"{PVS}{tagged_pvs['q1'].id}/"
    refused = [send(client, method, url, body).status_code for method, url, body in WRITES]
    refused += [send(client, "patch", pv_url, {"device": "X"}).status_code, client.delete(pv_url).status_code]
    assert refused == [403] * 6
    assert PV.objects.count() == 3 and PV.objects.get(pk=tagged_pvs["q1"].pk).device == "Q1"
    assert not AuditEntry.objects.exists()


def test_a_user_without_a_role_cannot_read(client, make_user, tagged_pvs):
    client.force_login(make_user(None))
    assert client.get(PVS).status_code == 403


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_bulk_delete_answers_other_methods_405(as_editor, tagged_pvs, method):
    response = getattr(as_editor, method)(BULK_DELETE)
    assert response.status_code == 405 and response["Allow"] == "POST, OPTIONS"
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_bulk_delete_needs_the_delete_permission(client, make_user, tagged_pvs):
    from django.contrib.auth.models import Permission

    user = make_user("viewer")
    user.user_permissions.add(*Permission.objects.filter(codename__in=["add_pv", "change_pv"]))
    client.force_login(user)
    response = send(client, "post", BULK_DELETE, {"ids": [tagged_pvs["q1"].id]})
    assert response.status_code == 403
    assert response.json()["error"] == {
        "status": 403,
        "code": "permission_denied",
        "message": "This needs the permission pvs.delete_pv.",
        "fields": {},
    }


# --- Audit -----------------------------------------------------------------------------------


def test_create_change_and_delete_are_each_one_entry_by_the_user(as_editor, editor, db):
    pv_id = send(as_editor, "post", PVS, {"setpoint_address": "NEW:A"}).json()["id"]
    send(as_editor, "patch", f"{PVS}{pv_id}/", {"abs_tolerance": 0.25})
    as_editor.delete(f"{PVS}{pv_id}/")
    assert entries() == [
        ("pvs.created", "api", "Created PV NEW:A"),
        ("pvs.changed", "api", "Changed PV NEW:A"),
        ("pvs.deleted", "api", "Deleted PV NEW:A"),
    ]
    assert {entry.actor for entry in AuditEntry.objects.all()} == {editor}
    assert AuditEntry.objects.get(action="pvs.changed").details["changes"] == {"abs_tolerance": [0.0, 0.25]}


def test_a_patch_that_changes_nothing_is_not_recorded(as_editor, tagged_pvs):
    assert send(as_editor, "patch", f"{PVS}{tagged_pvs['q1'].id}/", {"device": "Q1"}).status_code == 200
    assert not AuditEntry.objects.exists()


def test_a_refused_request_is_not_recorded(as_editor, tagged_pvs):
    send(as_editor, "post", PVS, {"setpoint_address": "LI:Q1:SP"})
    send(as_editor, "patch", f"{PVS}{tagged_pvs['q1'].id}/", {"abs_tolerance": -1})
    assert not AuditEntry.objects.exists()
