"""squirrel_site.bulk_sql.delete_rows and local_settings (the other helpers are tested in
snapshots/tests; the plans set_join() is for in snapshots/tests/test_bulk_plans.py)."""

import pytest
from django.db import connection, transaction

from pvs.models import PV
from squirrel_site.bulk_sql import delete_rows, local_settings, set_join
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


def setting(name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting(%s)", [name])
        return cursor.fetchone()[0]


def test_local_settings_hold_inside_the_block_and_are_put_back_inside_an_outer_transaction():
    with transaction.atomic():
        before = setting("work_mem")
        with local_settings(work_mem="77MB", enable_nestloop="off"):
            assert (setting("work_mem"), setting("enable_nestloop")) == ("77MB", "off")
        assert (setting("work_mem"), setting("enable_nestloop")) == (before, "on")


def test_local_settings_end_with_the_block_that_fails():
    with transaction.atomic():
        with pytest.raises(ZeroDivisionError), set_join():
            assert setting("enable_nestloop") == "off"
            raise ZeroDivisionError
        assert setting("enable_nestloop") == "on"
