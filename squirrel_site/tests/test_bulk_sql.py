"""squirrel_site.bulk_sql.delete_rows (the other helpers are tested in snapshots/tests)."""

import pytest

from pvs.models import PV
from squirrel_site.bulk_sql import delete_rows
from tags.models import Tag, TagGroup

pytestmark = pytest.mark.django_db


def test_delete_rows_deletes_the_rows_and_their_many_to_many_links():
    group = TagGroup.objects.create(name="Area")
    tag = Tag.objects.create(group=group, name="LINAC")
    doomed, kept = PV.objects.create(setpoint_address="A"), PV.objects.create(setpoint_address="B")
    doomed.tags.add(tag)
    kept.tags.add(tag)
    delete_rows(PV, [doomed.pk])
    assert list(PV.objects.all()) == [kept]
    assert list(tag.pvs.all()) == [kept]


def test_delete_rows_refuses_a_cascade_it_would_have_to_follow():
    group = TagGroup.objects.create(name="Area")
    with pytest.raises(ValueError, match="tags.Tag.group"):
        delete_rows(TagGroup, [group.pk])
    assert TagGroup.objects.exists()
