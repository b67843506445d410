import pytest
from django.core.exceptions import ValidationError

from pvs import services
from pvs.models import PV
from tags.models import Tag, TagGroup


@pytest.fixture
def pvs():
    return [PV.objects.create(setpoint_address=f"SIM:PV{i}") for i in range(5)]


@pytest.fixture
def magnets():
    return Tag.objects.create(group=TagGroup.objects.create(name="Subsystem"), name="Magnets")


@pytest.mark.django_db
def test_add_tags_links_each_pv_once(pvs, magnets):
    pvs[0].tags.add(magnets)
    added = services.add_tags(PV.objects.all(), [magnets])
    assert added == 4
    assert PV.objects.filter(tags=magnets).count() == 5


@pytest.mark.django_db
def test_add_tags_costs_few_queries_for_many_pvs(django_assert_max_num_queries, magnets):
    PV.objects.bulk_create(PV(setpoint_address=f"SIM:BULK{i}") for i in range(2000))
    with django_assert_max_num_queries(8):
        services.add_tags(PV.objects.all(), [magnets])
    assert magnets.pvs.count() == 2000


@pytest.mark.django_db
def test_remove_tags_only_touches_the_selection(pvs, magnets):
    for pv in pvs:
        pv.tags.add(magnets)
    removed = services.remove_tags(PV.objects.filter(setpoint_address__in=["SIM:PV0", "SIM:PV1"]), [magnets])
    assert removed == 2
    assert magnets.pvs.count() == 3


@pytest.mark.django_db
def test_set_tolerances_leaves_the_other_tolerance(pvs):
    PV.objects.update(rel_tolerance=0.05)
    services.set_tolerances(PV.objects.all(), abs_tolerance=0.1)
    assert set(PV.objects.values_list("abs_tolerance", "rel_tolerance")) == {(0.1, 0.05)}


@pytest.mark.django_db
def test_set_tolerances_rejects_negative_and_changes_nothing(pvs):
    with pytest.raises(ValidationError):
        services.set_tolerances(PV.objects.all(), abs_tolerance=-1.0)
    assert set(PV.objects.values_list("abs_tolerance", flat=True)) == {0.0}


@pytest.mark.django_db
def test_set_read_only_counts_only_changed_pvs(pvs):
    PV.objects.filter(setpoint_address="SIM:PV0").update(read_only=True)
    assert services.set_read_only(PV.objects.all(), True) == 4
    assert PV.objects.filter(read_only=True).count() == 5
