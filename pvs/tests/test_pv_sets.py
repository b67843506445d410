"""Saved PV sets: what a set resolves to, its changes (pvs.pv_sets) and their audit entries, and the
pv_set filter every PV selection takes."""

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from pvs import pv_sets
from pvs.filtersets import InvalidPVSet, PVFilterSet
from pvs.models import PV, PVSet
from pvs.pv_sets import PVSetError
from pvs.selections import pv_set_pvs, select_pvs, selection_problems
from squirrel_site.audit import AuditAction, AuditVia
from squirrel_site.models import AuditEntry
from tags.models import Tag, TagGroup

BY_PAGE = {"actor": None, "via": AuditVia.PAGE}


@pytest.fixture
def registry():
    """Ten PVs: SIM:MAG0..4 tagged Magnets (device MAG), SIM:RF0..4 (device RF)."""
    magnets = Tag.objects.create(group=TagGroup.objects.create(name="Subsystem"), name="Magnets")
    pvs = [PV.objects.create(setpoint_address=f"SIM:MAG{i}", device="MAG") for i in range(5)]
    pvs += [PV.objects.create(setpoint_address=f"SIM:RF{i}", device="RF") for i in range(5)]
    for pv in pvs[:5]:
        pv.tags.add(magnets)
    return {"magnets": magnets, "pvs": pvs}


def addresses(pvs) -> list[str]:
    return sorted(pv.setpoint_address for pv in pvs)


@pytest.mark.django_db
def test_a_set_is_its_explicit_list_together_with_what_its_filters_select(registry):
    pv_set = pv_sets.save_pv_set(
        PVSet(name="Magnets and one cavity", filters={"tag": [registry["magnets"].pk]}),
        member_ids=pv_sets.pv_ids(["SIM:RF3"]),
        **BY_PAGE,
    )
    assert addresses(pv_set_pvs(pv_set)) == [*(f"SIM:MAG{i}" for i in range(5)), "SIM:RF3"]
    # The same through the pv_set filter every PV selection takes.
    assert addresses(select_pvs({"pv_set": pv_set.pk})) == addresses(pv_set_pvs(pv_set))
    assert addresses(select_pvs({"pv_set": pv_set.pk, "device": "RF"})) == ["SIM:RF3"]


@pytest.mark.django_db
def test_a_set_with_neither_filters_nor_pvs_selects_no_pv(registry):
    pv_set = pv_sets.save_pv_set(PVSet(name="Empty"), member_ids=[], **BY_PAGE)
    assert not pv_set_pvs(pv_set).exists()


@pytest.mark.django_db
def test_saving_records_what_changed_in_the_audit_log(registry):
    pv_set = pv_sets.save_pv_set(PVSet(name="RF"), member_ids=pv_sets.pv_ids(["SIM:RF0", "SIM:RF1"]), **BY_PAGE)
    created = AuditEntry.objects.get()
    assert (created.action, created.target_id, created.details["added"]) == (
        AuditAction.PV_SET_CREATED,
        str(pv_set.pk),
        2,
    )
    pv_set.description = "The cavities"
    pv_sets.save_pv_set(pv_set, member_ids=pv_sets.pv_ids(["SIM:RF1", "SIM:RF2"]), changed=["description"], **BY_PAGE)
    changed = AuditEntry.objects.latest("pk")
    assert changed.action == AuditAction.PV_SET_CHANGED
    assert (changed.details["added"], changed.details["removed"], changed.details["changed"]) == (
        1,
        1,
        ["description", "pvs"],
    )
    assert pv_sets.member_addresses(pv_set) == ["SIM:RF1", "SIM:RF2"]


@pytest.mark.django_db
def test_change_members_adds_and_removes_counting_only_real_changes(registry):
    pv_set = pv_sets.save_pv_set(PVSet(name="RF"), member_ids=pv_sets.pv_ids(["SIM:RF0"]), **BY_PAGE)
    counts = pv_sets.change_members(
        pv_set, add=pv_sets.pv_ids(["SIM:RF0", "SIM:RF1"]), remove=pv_sets.pv_ids(["SIM:RF0"]), **BY_PAGE
    )
    assert counts == {"added": 1, "removed": 1}
    assert pv_sets.member_addresses(pv_set) == ["SIM:RF1"]
    entries = AuditEntry.objects.count()
    assert pv_sets.change_members(pv_set, add=pv_sets.pv_ids(["SIM:RF1"]), **BY_PAGE) == {"added": 0, "removed": 0}
    assert AuditEntry.objects.count() == entries  # nothing changed, nothing recorded


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"pv": ["SIM:RF0"]}, "Unknown filters: pv"),
        ({"pv_set": 1}, "Unknown filters: pv_set"),
        ({"tag": [999999]}, "valid choice"),
        ({"read_only": "maybe"}, "true or false"),
        (["tag"], "an object of PV filters"),
    ],
)
def test_refused_filters_store_nothing(registry, filters, message):
    with pytest.raises(PVSetError, match=message):
        pv_sets.save_pv_set(PVSet(name="Bad", filters=filters), member_ids=[registry["pvs"][0].pk], **BY_PAGE)
    assert not PVSet.objects.exists()
    assert not AuditEntry.objects.exists()


@pytest.mark.django_db
def test_a_name_taken_already_is_refused(registry):
    pv_sets.save_pv_set(PVSet(name="RF"), **BY_PAGE)
    with pytest.raises(PVSetError, match="exists already"):
        pv_sets.save_pv_set(PVSet(name="RF"), **BY_PAGE)


@pytest.mark.django_db
def test_addresses_malformed_or_not_in_the_registry_are_named(registry):
    assert pv_sets.parse_addresses("SIM:RF0\nSIM:RF1, SIM:RF0\n\n") == ["SIM:RF0", "SIM:RF1"]
    with pytest.raises(PVSetError, match="Not valid addresses: 'quoted'"):
        pv_sets.parse_addresses("SIM:RF0 'quoted'")
    with pytest.raises(PVSetError, match=r"Not in the registry: NO:SUCH:1, NO:SUCH:2\."):
        pv_sets.pv_ids(["SIM:RF0", "NO:SUCH:1", "NO:SUCH:2"])
    many = [f"NO:SUCH:{i}" for i in range(25)]
    with pytest.raises(PVSetError, match="and 15 more"):
        pv_sets.pv_ids(many)


@pytest.mark.django_db
def test_a_set_whose_tag_was_deleted_is_refused_where_it_is_used(registry):
    pv_set = pv_sets.save_pv_set(PVSet(name="Magnets", filters={"tag": [registry["magnets"].pk]}), **BY_PAGE)
    registry["magnets"].delete()
    with pytest.raises(InvalidPVSet, match="no longer valid"):
        pv_set_pvs(pv_set)
    assert "no longer valid" in str(selection_problems({"pv_set": pv_set.pk}))
    assert not PVFilterSet(data={"pv_set": pv_set.pk}, queryset=PV.objects.all()).is_valid()


@pytest.mark.django_db
def test_deleting_a_set_is_audited_and_keeps_the_pvs(registry):
    pv_set = pv_sets.save_pv_set(PVSet(name="RF"), member_ids=pv_sets.pv_ids(["SIM:RF0"]), **BY_PAGE)
    pv_sets.delete_pv_set(pv_set, **BY_PAGE)
    assert not PVSet.objects.exists()
    assert PV.objects.count() == 10
    assert AuditEntry.objects.latest("pk").action == AuditAction.PV_SET_DELETED


@pytest.mark.django_db
def test_an_explicit_list_of_ten_thousand_pvs_is_written_and_resolved_in_a_few_statements():
    names = [f"BIG:PV{i:05d}" for i in range(10_000)]
    PV.objects.create_from_rows([{"setpoint_address": name} for name in names], now=timezone.now())
    started = time.monotonic()
    with CaptureQueriesContext(connection) as queries:
        ids = pv_sets.pv_ids(pv_sets.parse_addresses("\n".join(names)))
        pv_set = pv_sets.save_pv_set(PVSet(name="Big"), member_ids=ids, **BY_PAGE)
        assert pv_set_pvs(pv_set).count() == 10_000
    elapsed = time.monotonic() - started
    assert len(queries) < 15, [query["sql"][:80] for query in queries]
    assert elapsed < 5.0
    with CaptureQueriesContext(connection) as queries:
        pv_sets.save_pv_set(pv_set, member_ids=ids[:5000], **BY_PAGE)
    assert len(queries) < 15
    assert pv_set.pvs.count() == 5000
