import pytest

from pvs.models import PV
from squirrel_site.audit import AuditAction, AuditVia
from squirrel_site.models import AuditEntry
from tags import services
from tags.models import Tag, TagGroup

pytestmark = pytest.mark.django_db

BY_API = {"actor": None, "via": AuditVia.API}


@pytest.fixture
def area():
    return TagGroup.objects.create(name="Area")


@pytest.fixture
def linac(area):
    return Tag.objects.create(group=area, name="LINAC")


def test_creating_a_tag_records_it(area, editor):
    tag = Tag(group=area, name="UND")
    services.create(tag, actor=editor, via=AuditVia.API)
    recorded = AuditEntry.objects.get()
    assert tag.pk is not None
    assert (recorded.action, recorded.actor, recorded.summary, recorded.target_type, recorded.target_id) == (
        AuditAction.TAGS_CREATED,
        editor,
        "Created tag Area: UND",
        "tags.tag",
        str(tag.pk),
    )


def test_updating_a_tag_deleted_meanwhile_stores_nothing(linac):
    Tag.objects.filter(pk=linac.pk).delete()
    linac.name = "LINAC2"
    with pytest.raises(services.RegistryChanged, match="The tag Area: LINAC2 was deleted meanwhile"):
        services.update(linac, **BY_API)
    assert not Tag.objects.exists() and not AuditEntry.objects.exists()


def test_updating_a_group_records_old_and_new_values(area):
    area.name, area.description = "Sector", "Where it is"
    changes = services.update(area, **BY_API)
    assert changes == {"name": ["Area", "Sector"], "description": ["", "Where it is"]}
    recorded = AuditEntry.objects.get()
    assert (recorded.action, recorded.summary, recorded.details) == (
        AuditAction.TAGS_CHANGED,
        "Changed tag group Sector",
        {"changes": changes},
    )
    assert TagGroup.objects.get(pk=area.pk).name == "Sector"


def test_moving_a_tag_to_another_group_records_the_group_ids(linac, area):
    other = TagGroup.objects.create(name="Other")
    linac.group = other
    assert services.update(linac, **BY_API) == {"group_id": [area.id, other.id]}


def test_an_update_without_changes_saves_and_records_nothing(linac):
    before = Tag.objects.get(pk=linac.pk).updated_at
    assert services.update(linac, **BY_API) == {}
    assert Tag.objects.get(pk=linac.pk).updated_at == before
    assert not AuditEntry.objects.exists()


def test_deleting_a_group_deletes_its_tags_and_untags_pvs(area, linac):
    Tag.objects.create(group=area, name="UND")
    pv = PV.objects.create(setpoint_address="A:1")
    pv.tags.add(linac)
    before = pv.updated_at
    counts = services.delete(TagGroup.objects.filter(pk=area.pk), **BY_API)
    assert counts == {"tag_groups": 1, "tags": 2, "pv_links": 1}
    assert not Tag.objects.exists()
    assert PV.objects.get(pk=pv.pk).updated_at > before


def test_deleting_a_group_records_what_went_with_it(area, linac):
    services.delete(TagGroup.objects.filter(pk=area.pk), **BY_API)
    recorded = AuditEntry.objects.get()
    assert (recorded.action, recorded.summary, recorded.target_id) == (
        AuditAction.TAGS_DELETED,
        "Deleted tag group Area",
        str(area.pk),
    )
    assert recorded.details == {"tag_groups": 1, "tags": 1, "pv_links": 0, "names": ["Area"]}


def test_deleting_several_tags_records_one_entry(area, linac):
    Tag.objects.create(group=area, name="UND")
    counts = services.delete(Tag.objects.all(), **BY_API)
    assert counts == {"tag_groups": 0, "tags": 2, "pv_links": 0}
    recorded = AuditEntry.objects.get()
    assert (recorded.summary, recorded.target_id, recorded.details["names"]) == (
        "Deleted 2 tags",
        "",
        ["Area: LINAC", "Area: UND"],
    )


def test_deleting_nothing_records_nothing(db):
    assert services.delete(Tag.objects.none(), **BY_API) == {"tag_groups": 0, "tags": 0, "pv_links": 0}
    assert not AuditEntry.objects.exists()
