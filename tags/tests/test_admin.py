"""The tag admin: each save or deletion, inline tags included, is one audit entry via "admin"."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from squirrel_site.models import AuditEntry
from tags.models import Tag, TagGroup

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def area():
    group = TagGroup.objects.create(name="Area")
    Tag.objects.create(group=group, name="LINAC")
    return group


def _group_form(group, **changes):
    """The change form of `group` as the browser posts it, its one tag unchanged."""
    tag = group.tags.get()
    form = {
        "name": group.name,
        "description": group.description,
        "tags-TOTAL_FORMS": "2",
        "tags-INITIAL_FORMS": "1",
        "tags-MIN_NUM_FORMS": "0",
        "tags-MAX_NUM_FORMS": "1000",
        "tags-0-id": str(tag.id),
        "tags-0-group": str(group.id),
        "tags-0-name": tag.name,
        "tags-0-description": "",
        "tags-1-id": "",
        "tags-1-group": str(group.id),
        "tags-1-name": "",
        "tags-1-description": "",
    }
    return {**form, **changes}


def test_adding_an_inline_tag_is_one_entry(staff_client, area):
    form = _group_form(area, **{"tags-1-name": "UND"})
    response = staff_client.post(reverse("admin:tags_taggroup_change", args=[area.id]), form)
    assert response.status_code == 302
    recorded = [(e.action, e.via, e.summary) for e in AuditEntry.objects.all()]
    assert recorded == [("tags.created", "admin", "Created tag Area: UND")]


def test_renaming_a_group_and_deleting_its_tag_are_two_entries(staff_client, area):
    form = _group_form(area, name="Sector", **{"tags-0-DELETE": "on"})
    staff_client.post(reverse("admin:tags_taggroup_change", args=[area.id]), form)
    assert not Tag.objects.exists()
    summaries = sorted(e.summary for e in AuditEntry.objects.all())
    assert summaries == ["Changed tag group Sector", "Deleted tag Sector: LINAC"]


def test_saving_an_unchanged_group_records_nothing(staff_client, area):
    staff_client.post(reverse("admin:tags_taggroup_change", args=[area.id]), _group_form(area))
    assert not AuditEntry.objects.exists()


def test_deleting_a_group_records_its_tags_going_with_it(staff_client, area):
    staff_client.post(reverse("admin:tags_taggroup_delete", args=[area.id]), {"post": "yes"})
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.details["tags"]) == ("tags.deleted", 1)


def test_delete_selected_tags_is_one_entry(staff_client, area):
    Tag.objects.create(group=area, name="UND")
    ids = list(Tag.objects.values_list("id", flat=True))
    form = {"action": "delete_selected", ACTION_CHECKBOX_NAME: ids, "post": "yes"}
    staff_client.post(reverse("admin:tags_tag_changelist"), form)
    assert not Tag.objects.exists()
    assert AuditEntry.objects.get().summary == "Deleted 2 tags"
