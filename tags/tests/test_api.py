"""The tag and tag group API: CRUD, filters, validation, cascades, permissions, audit."""

import json

import pytest
from rest_framework.validators import UniqueValidator

from pvs.models import PV
from squirrel_site.models import AuditEntry
from tags.api.serializers import TagSerializer
from tags.models import Tag, TagGroup

pytestmark = pytest.mark.django_db

GROUPS = "/api/v1/tag-groups/"
TAGS = "/api/v1/tags/"


def send(client, method: str, url: str, body: dict):
    return getattr(client, method)(url, json.dumps(body), content_type="application/json")


@pytest.fixture
def as_editor(client, editor):
    client.force_login(editor)
    return client


@pytest.fixture
def vocabulary():
    """Area (LINAC on two PVs, UND) and System (Magnets)."""
    area = TagGroup.objects.create(name="Area")
    system = TagGroup.objects.create(name="System", description="What it is")
    linac = Tag.objects.create(group=area, name="LINAC")
    und = Tag.objects.create(group=area, name="UND")
    magnets = Tag.objects.create(group=system, name="Magnets")
    for address in ("A:1", "A:2"):
        PV.objects.create(setpoint_address=address).tags.add(linac)
    return {"area": area, "system": system, "linac": linac, "und": und, "magnets": magnets}


def invalid(response) -> dict[str, list[str]]:
    """The messages of a refused request by dotted field path (the error envelope's `fields`)."""
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid", error
    return error["fields"]


def names(response) -> list[str]:
    return [item["name"] for item in response.json()["results"]]


# --- Tag groups --------------------------------------------------------------------------------


def test_group_list_shows_tag_counts(as_editor, vocabulary):
    results = as_editor.get(GROUPS).json()["results"]
    assert [(group["name"], group["tag_count"]) for group in results] == [("Area", 2), ("System", 1)]


def test_group_list_costs_a_fixed_number_of_queries(as_editor, vocabulary, django_assert_num_queries):
    TagGroup.objects.bulk_create(TagGroup(name=f"G{i}") for i in range(30))
    # Session, user, the user's and the groups' permissions, the page.
    with django_assert_num_queries(5):
        assert len(as_editor.get(GROUPS).json()["results"]) == 32


@pytest.mark.parametrize(
    ("query", "expected"),
    [({"name": "Area"}, ["Area"]), ({"search": "what"}, ["System"]), ({"search": "ys"}, ["System"])],
)
def test_group_filters(as_editor, vocabulary, query, expected):
    assert names(as_editor.get(GROUPS, query)) == expected


def test_create_a_group(as_editor, db):
    response = send(as_editor, "post", GROUPS, {"name": "Sector", "description": "Where"})
    assert response.status_code == 201, response.json()
    assert (response.json()["name"], response.json()["tag_count"]) == ("Sector", 0)
    assert TagGroup.objects.get().description == "Where"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": "Area"}, "already exists"),
        ({"name": "A,B"}, "may not contain ','"),
        ({"name": "Line\nbreak"}, "line breaks"),
        ({"name": "x" * 101}, "no more than 100 characters"),
        ({"name": ""}, "may not be blank"),
        ({}, "This field is required."),
    ],
)
def test_bad_group_names_are_field_errors(as_editor, vocabulary, body, message):
    errors = invalid(send(as_editor, "post", GROUPS, body))
    assert list(errors) == ["name"] and len(errors["name"]) == 1 and message in errors["name"][0]


def test_rename_a_group(as_editor, vocabulary):
    response = send(as_editor, "patch", f"{GROUPS}{vocabulary['area'].id}/", {"name": "Sector"})
    assert response.status_code == 200 and response.json()["tag_count"] == 2
    assert TagGroup.objects.get(pk=vocabulary["area"].pk).name == "Sector"


def test_deleting_a_group_deletes_its_tags_and_says_so(as_editor, vocabulary):
    response = as_editor.delete(f"{GROUPS}{vocabulary['area'].id}/")
    assert response.status_code == 200
    assert response.json() == {"tag_groups": 1, "tags": 2, "pv_links": 2}
    assert list(Tag.objects.values_list("name", flat=True)) == ["Magnets"]
    assert PV.objects.count() == 2 and not PV.tags.through.objects.exists()


# --- Tags ----------------------------------------------------------------------------------------


def test_tag_list_shows_group_and_pv_counts(as_editor, vocabulary):
    linac = as_editor.get(TAGS, {"name": "LINAC"}).json()["results"][0]
    assert (linac["group"], linac["group_name"], linac["pv_count"]) == (vocabulary["area"].id, "Area", 2)


def test_tag_list_costs_a_fixed_number_of_queries(as_editor, vocabulary, django_assert_num_queries):
    Tag.objects.bulk_create(Tag(group=vocabulary["system"], name=f"T{i}") for i in range(30))
    with django_assert_num_queries(5):
        assert len(as_editor.get(TAGS).json()["results"]) == 33


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"group_name": "Area"}, ["LINAC", "UND"]),
        ({"name": "UND"}, ["UND"]),
        ({"search": "in"}, ["LINAC"]),
        ({"search": "sys"}, ["Magnets"]),
    ],
)
def test_tag_filters(as_editor, vocabulary, query, expected):
    assert names(as_editor.get(TAGS, query)) == expected


def test_tag_filter_by_group_ids(as_editor, vocabulary):
    assert names(as_editor.get(TAGS, {"group": [vocabulary["system"].id]})) == ["Magnets"]
    assert len(names(as_editor.get(TAGS, {"group": [vocabulary["system"].id, vocabulary["area"].id]}))) == 3


def test_an_unknown_group_filter_is_a_400(as_editor, vocabulary):
    assert invalid(as_editor.get(TAGS, {"group": 999999})) == {
        "group": ["Select a valid choice. 999999 is not one of the available choices."]
    }


def test_create_a_tag(as_editor, vocabulary):
    response = send(as_editor, "post", TAGS, {"group": vocabulary["system"].id, "name": "Vacuum"})
    assert response.status_code == 201, response.json()
    assert (response.json()["group_name"], response.json()["pv_count"]) == ("System", 0)


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"name": "LINAC"}, "name", "Tag group Area already has a tag named 'LINAC'."),
        ({"name": "a,b"}, "name", "may not contain ','"),
        ({"name": "tab\there"}, "name", "tabs"),
        ({"name": "x" * 101}, "name", "no more than 100 characters"),
        ({"group": 999999, "name": "X"}, "group", "does not exist"),
        ({"group": "Area", "name": "X"}, "group", "Incorrect type"),
    ],
)
def test_bad_tags_are_field_errors(as_editor, vocabulary, body, field, message):
    errors = invalid(send(as_editor, "post", TAGS, {"group": vocabulary["area"].id, **body}))
    assert list(errors) == [field] and len(errors[field]) == 1 and message in errors[field][0]


def test_spaces_around_a_tag_name_are_trimmed_before_validation(as_editor, vocabulary):
    response = send(as_editor, "post", TAGS, {"group": vocabulary["area"].id, "name": " BSY "})
    assert response.status_code == 201 and response.json()["name"] == "BSY"


def test_the_same_name_in_another_group_is_fine(as_editor, vocabulary):
    assert send(as_editor, "post", TAGS, {"group": vocabulary["system"].id, "name": "LINAC"}).status_code == 201


def test_moving_a_tag_into_a_group_that_has_its_name_is_refused(as_editor, vocabulary):
    Tag.objects.create(group=vocabulary["system"], name="UND")
    response = send(as_editor, "patch", f"{TAGS}{vocabulary['und'].id}/", {"group": vocabulary["system"].id})
    assert invalid(response) == {"name": ["Tag group System already has a tag named 'UND'."]}


def test_patch_may_keep_the_tags_own_name(as_editor, vocabulary):
    body = {"name": "UND", "description": "Undulator"}
    response = send(as_editor, "patch", f"{TAGS}{vocabulary['und'].id}/", body)
    assert response.status_code == 200 and response.json()["description"] == "Undulator"


def test_deleting_a_tag_untags_its_pvs_and_says_so(as_editor, vocabulary):
    response = as_editor.delete(f"{TAGS}{vocabulary['linac'].id}/")
    assert response.status_code == 200 and response.json() == {"tag_groups": 0, "tags": 1, "pv_links": 2}
    assert PV.objects.count() == 2


# --- Races -----------------------------------------------------------------------------------------


def conflict(response) -> str:
    """The message of a 409: the registry changed between validation and writing."""
    assert response.status_code == 409, response.content
    error = response.json()["error"]
    assert error["code"] == "conflict" and error["fields"] == {}
    return error["message"]


def test_a_group_name_taken_by_someone_else_after_validation_is_a_409(as_editor, vocabulary, monkeypatch):
    # As if another request had created "Area" after this one's check.
    monkeypatch.setattr(UniqueValidator, "__call__", lambda self, value, serializer_field: None)
    message = conflict(send(as_editor, "post", GROUPS, {"name": "Area"}))
    assert message.startswith("The registry changed during the request") and message.endswith("nothing was stored.")
    assert TagGroup.objects.count() == 2 and not AuditEntry.objects.exists()


def test_a_tag_name_taken_by_someone_else_after_validation_is_a_409(as_editor, vocabulary, monkeypatch):
    monkeypatch.setattr(TagSerializer, "validate", lambda self, attrs: attrs)
    message = conflict(send(as_editor, "patch", f"{TAGS}{vocabulary['und'].id}/", {"name": "LINAC"}))
    assert "tag_unique_name_in_group" in message
    assert Tag.objects.get(pk=vocabulary["und"].pk).name == "UND" and not AuditEntry.objects.exists()


# --- Permissions and audit ---------------------------------------------------------------------


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_viewers_and_operators_read_but_cannot_curate(client, make_user, vocabulary, role):
    client.force_login(make_user(role))
    assert client.get(TAGS).status_code == 200 and client.get(GROUPS).status_code == 200
    statuses = [
        send(client, "post", GROUPS, {"name": "New"}).status_code,
        send(client, "patch", f"{GROUPS}{vocabulary['area'].id}/", {"name": "X"}).status_code,
        client.delete(f"{GROUPS}{vocabulary['area'].id}/").status_code,
        send(client, "post", TAGS, {"group": vocabulary["area"].id, "name": "New"}).status_code,
        send(client, "patch", f"{TAGS}{vocabulary['und'].id}/", {"name": "X"}).status_code,
        client.delete(f"{TAGS}{vocabulary['und'].id}/").status_code,
    ]
    assert statuses == [403] * 6
    assert (TagGroup.objects.count(), Tag.objects.count()) == (2, 3) and not AuditEntry.objects.exists()


def test_anonymous_requests_get_401(client, vocabulary):
    assert client.get(TAGS).status_code == 401 and client.get(GROUPS).status_code == 401


def test_each_change_is_one_entry_by_the_user(as_editor, editor, vocabulary):
    tag_id = send(as_editor, "post", TAGS, {"group": vocabulary["area"].id, "name": "BSY"}).json()["id"]
    send(as_editor, "patch", f"{TAGS}{tag_id}/", {"name": "BSY2"})
    as_editor.delete(f"{TAGS}{tag_id}/")
    entries = list(AuditEntry.objects.order_by("id"))
    assert [(e.action, e.via, e.summary) for e in entries] == [
        ("tags.created", "api", "Created tag Area: BSY"),
        ("tags.changed", "api", "Changed tag Area: BSY2"),
        ("tags.deleted", "api", "Deleted tag Area: BSY2"),
    ]
    assert {e.actor for e in entries} == {editor}
    assert entries[1].details == {"changes": {"name": ["BSY", "BSY2"]}}


def test_a_refused_change_is_not_recorded(as_editor, vocabulary):
    send(as_editor, "post", GROUPS, {"name": "Area"})
    send(as_editor, "post", TAGS, {"group": vocabulary["area"].id, "name": "UND"})
    assert not AuditEntry.objects.exists()
