import pytest
from django.core.exceptions import ValidationError

from pvs import services
from pvs.models import PV
from snapshots.models import Snapshot, SnapshotValue
from squirrel_site.audit import AuditAction, AuditVia
from squirrel_site.models import AuditEntry
from tags.models import Tag, TagGroup

BY_ADMIN = {"actor": None, "via": AuditVia.ADMIN}


@pytest.fixture
def pvs():
    return [PV.objects.create(setpoint_address=f"SIM:PV{i}") for i in range(5)]


@pytest.fixture
def magnets():
    return Tag.objects.create(group=TagGroup.objects.create(name="Subsystem"), name="Magnets")


@pytest.fixture
def linac(magnets):
    return Tag.objects.create(group=TagGroup.objects.create(name="Area"), name="LINAC")


def entry() -> AuditEntry:
    """The only audit entry (the test fails if there are more or none)."""
    return AuditEntry.objects.get()


# --- registry_problems ---------------------------------------------------------------------


@pytest.mark.django_db
def test_registry_problems_finds_nothing_wrong_with_new_addresses_and_known_tags(pvs, magnets):
    assert services.registry_problems([{"setpoint_address": "NEW:A", "tags": [magnets.id]}]) == {}


@pytest.mark.django_db
def test_registry_problems_names_the_pv_holding_an_address(pvs):
    problems = services.registry_problems([{"setpoint_address": "NEW:A"}, {"setpoint_address": "SIM:PV3"}])
    assert problems == {1: {"setpoint_address": [f"PV {pvs[3].id} has this setpoint address."]}}


@pytest.mark.django_db
def test_registry_problems_names_the_earlier_item_with_the_same_address(db):
    problems = services.registry_problems([{"setpoint_address": "NEW:A"}, {"setpoint_address": "NEW:A"}])
    assert problems == {1: {"setpoint_address": ["Item 0 has this setpoint address too."]}}


@pytest.mark.django_db
def test_registry_problems_lets_a_pv_keep_its_own_address(pvs):
    assert services.registry_problems([{"id": pvs[0].id, "setpoint_address": "SIM:PV0"}]) == {}


@pytest.mark.django_db
def test_registry_problems_refuses_an_address_even_when_the_request_renames_its_holder(pvs):
    items = [{"id": pvs[0].id, "setpoint_address": "SIM:PV1"}, {"id": pvs[1].id, "setpoint_address": "SIM:PV9"}]
    problems = services.registry_problems(items)
    assert problems == {0: {"setpoint_address": [f"PV {pvs[1].id} has this setpoint address."]}}


@pytest.mark.django_db
def test_registry_problems_reports_unknown_and_repeated_pv_ids(pvs):
    problems = services.registry_problems([{"id": pvs[0].id}, {"id": 999_999}, {"id": pvs[0].id}])
    assert problems == {1: {"id": ["No PV with id 999999."]}, 2: {"id": [f"PV {pvs[0].id} is also item 0."]}}


@pytest.mark.django_db
def test_registry_problems_lists_unknown_tag_ids(magnets):
    problems = services.registry_problems([{"setpoint_address": "A", "tags": [magnets.id, 999_998, 999_999]}])
    assert problems == {0: {"tags": ["No tag with id 999998, 999999."]}}


@pytest.mark.django_db
def test_registry_problems_costs_two_queries_for_many_items(django_assert_num_queries, magnets):
    items = [{"setpoint_address": f"NEW:{i}", "tags": [magnets.id]} for i in range(5000)]
    with django_assert_num_queries(2):
        assert services.registry_problems(items) == {}


# --- create_pvs ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_create_pvs_gives_missing_fields_their_defaults_and_links_tags(magnets, linac):
    [pv_id] = services.create_pvs(
        [{"setpoint_address": "NEW:A", "abs_tolerance": 0.5, "tags": [magnets.id, linac.id]}], **BY_ADMIN
    )
    pv = PV.objects.get(pk=pv_id)
    assert (pv.setpoint_address, pv.abs_tolerance, pv.rel_tolerance, pv.read_only, pv.description) == (
        "NEW:A",
        0.5,
        0.0,
        False,
        "",
    )
    assert set(pv.tags.all()) == {magnets, linac}
    assert pv.created_at is not None and pv.updated_at == pv.created_at


@pytest.mark.django_db
def test_create_pvs_returns_ids_in_item_order(db):
    ids = services.create_pvs([{"setpoint_address": address} for address in ["B", "A", "C"]], **BY_ADMIN)
    assert [PV.objects.get(pk=pv_id).setpoint_address for pv_id in ids] == ["B", "A", "C"]


@pytest.mark.django_db
def test_creating_one_pv_records_it_as_the_target(editor):
    [pv_id] = services.create_pvs([{"setpoint_address": "NEW:A"}], actor=editor, via=AuditVia.API)
    recorded = entry()
    assert (recorded.action, recorded.actor, recorded.via, recorded.summary) == (
        AuditAction.PVS_CREATED,
        editor,
        AuditVia.API,
        "Created PV NEW:A",
    )
    assert (recorded.target_type, recorded.target_id) == ("pvs.pv", str(pv_id))
    assert recorded.details == {"count": 1, "addresses": ["NEW:A"]}


@pytest.mark.django_db
def test_creating_many_pvs_records_one_entry_with_a_hundred_addresses(db):
    services.create_pvs([{"setpoint_address": f"NEW:{i:04d}"} for i in range(250)], **BY_ADMIN)
    recorded = entry()
    assert recorded.summary == "Created 250 PVs" and recorded.target_id == ""
    assert recorded.details["count"] == 250
    assert recorded.details["addresses"] == [f"NEW:{i:04d}" for i in range(100)]


@pytest.mark.django_db
def test_create_pvs_turns_an_address_taken_meanwhile_into_registry_changed(pvs):
    with pytest.raises(services.RegistryChanged, match="nothing was stored"):
        services.create_pvs([{"setpoint_address": "NEW:A"}, {"setpoint_address": "SIM:PV0"}], **BY_ADMIN)
    assert not PV.objects.filter(setpoint_address="NEW:A").exists()
    assert not AuditEntry.objects.exists()


# --- update_pvs ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_update_pvs_changes_only_the_given_fields(pvs):
    PV.objects.filter(pk=pvs[0].pk).update(description="keep", rel_tolerance=0.1)
    changed = services.update_pvs({pvs[0].id: {"abs_tolerance": 2.0}, pvs[1].id: {"device": "D1"}}, **BY_ADMIN)
    assert changed == 2
    first, second = PV.objects.get(pk=pvs[0].pk), PV.objects.get(pk=pvs[1].pk)
    assert (first.abs_tolerance, first.rel_tolerance, first.description, first.device) == (2.0, 0.1, "keep", "")
    assert (second.abs_tolerance, second.device) == (0.0, "D1")


@pytest.mark.django_db
def test_update_pvs_leaves_unchanged_pvs_and_their_updated_at_alone(pvs):
    before = PV.objects.get(pk=pvs[0].pk).updated_at
    assert services.update_pvs({pvs[0].id: {"setpoint_address": "SIM:PV0", "read_only": False}}, **BY_ADMIN) == 0
    assert PV.objects.get(pk=pvs[0].pk).updated_at == before
    assert not AuditEntry.objects.exists()


@pytest.mark.django_db
def test_update_pvs_moves_updated_at_so_the_monitor_notices(pvs):
    before = PV.objects.get(pk=pvs[0].pk).updated_at
    services.update_pvs({pvs[0].id: {"setpoint_address": "SIM:RENAMED"}}, **BY_ADMIN)
    assert PV.objects.get(pk=pvs[0].pk).updated_at > before


@pytest.mark.django_db
def test_update_pvs_replaces_tags(pvs, magnets, linac):
    pvs[0].tags.add(magnets)
    services.update_pvs({pvs[0].id: {"tags": [linac.id]}, pvs[1].id: {"tags": [magnets.id, linac.id]}}, **BY_ADMIN)
    assert list(pvs[0].tags.all()) == [linac]
    assert set(pvs[1].tags.all()) == {magnets, linac}


@pytest.mark.django_db
def test_update_pvs_without_tags_keeps_them(pvs, magnets):
    pvs[0].tags.add(magnets)
    services.update_pvs({pvs[0].id: {"device": "D"}}, **BY_ADMIN)
    assert list(pvs[0].tags.all()) == [magnets]


@pytest.mark.django_db
def test_updating_one_pv_records_each_change_as_old_and_new(pvs, magnets, linac, editor):
    pvs[0].tags.add(magnets)
    services.update_pvs(
        {pvs[0].id: {"abs_tolerance": 0.5, "device": "", "tags": [linac.id]}}, actor=editor, via=AuditVia.API
    )
    recorded = entry()
    assert (recorded.action, recorded.summary, recorded.target_id) == (
        AuditAction.PVS_CHANGED,
        "Changed PV SIM:PV0",
        str(pvs[0].id),
    )
    assert recorded.details["changes"] == {
        "abs_tolerance": [0.0, 0.5],
        "tags": [["Subsystem: Magnets"], ["Area: LINAC"]],
    }


@pytest.mark.django_db
def test_updating_many_pvs_records_the_changed_fields(pvs):
    services.update_pvs({pv.id: {"device": "D", "read_only": False} for pv in pvs}, **BY_ADMIN)
    recorded = entry()
    assert recorded.summary == "Changed 5 PVs"
    assert (recorded.details["count"], recorded.details["fields"]) == (5, ["device"])
    assert recorded.details["addresses"] == [f"SIM:PV{i}" for i in range(5)]


@pytest.mark.django_db
def test_update_pvs_of_a_pv_deleted_meanwhile_stores_nothing(pvs):
    with pytest.raises(services.RegistryChanged, match="deleted meanwhile"):
        services.update_pvs({pvs[0].id: {"device": "D"}, 999_999: {"device": "D"}}, **BY_ADMIN)
    assert PV.objects.get(pk=pvs[0].pk).device == ""


@pytest.mark.django_db
def test_update_pvs_costs_a_fixed_number_of_queries(django_assert_max_num_queries, magnets):
    ids = services.create_pvs([{"setpoint_address": f"NEW:{i}"} for i in range(2000)], **BY_ADMIN)
    with django_assert_max_num_queries(10):
        services.update_pvs({pv_id: {"abs_tolerance": 1.0, "tags": [magnets.id]} for pv_id in ids}, **BY_ADMIN)
    assert magnets.pvs.count() == 2000


# --- delete_pvs ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_delete_pvs_removes_pvs_and_their_tag_links(pvs, magnets):
    for pv in pvs:
        pv.tags.add(magnets)
    assert services.delete_pvs(PV.objects.filter(setpoint_address__in=["SIM:PV0", "SIM:PV1"]), **BY_ADMIN) == 2
    assert sorted(PV.objects.values_list("setpoint_address", flat=True)) == ["SIM:PV2", "SIM:PV3", "SIM:PV4"]
    assert magnets.pvs.count() == 3


@pytest.mark.django_db
def test_delete_pvs_keeps_snapshot_values_without_the_pv(pvs, admin_user):
    snapshot = Snapshot.objects.create(title="t", created_by=admin_user, mode="direct")
    value = SnapshotValue.objects.create(
        snapshot=snapshot, pv=pvs[0], pv_name="SIM:PV0", value_type="float", source="direct", connected=True
    )
    services.delete_pvs(PV.objects.filter(pk=pvs[0].pk), **BY_ADMIN)
    value.refresh_from_db()
    assert value.pv_id is None and value.pv_name == "SIM:PV0"


@pytest.mark.django_db
def test_deleting_one_pv_records_it_as_the_target(pvs):
    services.delete_pvs(PV.objects.filter(pk=pvs[2].pk), **BY_ADMIN)
    recorded = entry()
    assert (recorded.action, recorded.summary, recorded.target_id, recorded.details) == (
        AuditAction.PVS_DELETED,
        "Deleted PV SIM:PV2",
        str(pvs[2].id),
        {"count": 1, "addresses": ["SIM:PV2"]},
    )


@pytest.mark.django_db
def test_deleting_nothing_records_nothing(pvs):
    assert services.delete_pvs(PV.objects.none(), **BY_ADMIN) == 0
    assert not AuditEntry.objects.exists()


# --- curation actions ----------------------------------------------------------------------


@pytest.mark.django_db
def test_add_tags_links_each_pv_once(pvs, magnets):
    pvs[0].tags.add(magnets)
    added = services.add_tags(PV.objects.all(), [magnets], **BY_ADMIN)
    assert added == 4
    assert PV.objects.filter(tags=magnets).count() == 5


@pytest.mark.django_db
def test_add_tags_records_the_pvs_it_changed(pvs, magnets):
    pvs[0].tags.add(magnets)
    services.add_tags(PV.objects.all(), [magnets], **BY_ADMIN)
    recorded = entry()
    assert recorded.summary == "Added Subsystem: Magnets on 4 PVs"
    assert recorded.details == {
        "count": 4,
        "addresses": ["SIM:PV1", "SIM:PV2", "SIM:PV3", "SIM:PV4"],
        "fields": ["tags"],
        "tags": ["Subsystem: Magnets"],
    }


@pytest.mark.django_db
def test_add_tags_costs_few_queries_for_many_pvs(django_assert_max_num_queries, magnets):
    PV.objects.bulk_create(PV(setpoint_address=f"SIM:BULK{i}") for i in range(2000))
    with django_assert_max_num_queries(8):
        services.add_tags(PV.objects.all(), [magnets], **BY_ADMIN)
    assert magnets.pvs.count() == 2000


@pytest.mark.django_db
def test_remove_tags_only_touches_the_selection(pvs, magnets):
    for pv in pvs:
        pv.tags.add(magnets)
    removed = services.remove_tags(
        PV.objects.filter(setpoint_address__in=["SIM:PV0", "SIM:PV1"]), [magnets], **BY_ADMIN
    )
    assert removed == 2
    assert magnets.pvs.count() == 3
    assert entry().summary == "Removed Subsystem: Magnets on 2 PVs"


@pytest.mark.django_db
def test_removing_tags_no_pv_has_records_nothing(pvs, magnets):
    assert services.remove_tags(PV.objects.all(), [magnets], **BY_ADMIN) == 0
    assert not AuditEntry.objects.exists()


@pytest.mark.django_db
def test_set_tolerances_leaves_the_other_tolerance(pvs):
    PV.objects.update(rel_tolerance=0.05)
    services.set_tolerances(PV.objects.all(), abs_tolerance=0.1, **BY_ADMIN)
    assert set(PV.objects.values_list("abs_tolerance", "rel_tolerance")) == {(0.1, 0.05)}
    assert entry().details["values"] == {"abs_tolerance": 0.1}


@pytest.mark.django_db
def test_set_tolerances_rejects_negative_and_changes_nothing(pvs):
    with pytest.raises(ValidationError):
        services.set_tolerances(PV.objects.all(), abs_tolerance=-1.0, **BY_ADMIN)
    assert set(PV.objects.values_list("abs_tolerance", flat=True)) == {0.0}
    assert not AuditEntry.objects.exists()


@pytest.mark.django_db
def test_set_read_only_counts_only_changed_pvs(pvs):
    PV.objects.filter(setpoint_address="SIM:PV0").update(read_only=True)
    assert services.set_read_only(PV.objects.all(), True, **BY_ADMIN) == 4
    assert PV.objects.filter(read_only=True).count() == 5
    assert entry().summary == "Marked 4 PVs read-only"


# --- import_registry -----------------------------------------------------------------------


@pytest.mark.django_db
def test_an_applied_import_is_recorded_with_its_counts(pvs):
    csv = "Setpoint,Readback,Description\nSIM:PV0,,changed\nNEW:A,,\nSIM:PV1,,\n"
    services.import_registry("r.csv", csv, actor=None, via=AuditVia.COMMAND, dry_run=False)
    recorded = entry()
    assert (recorded.action, recorded.via, recorded.summary) == (
        AuditAction.PVS_IMPORTED,
        AuditVia.COMMAND,
        "Imported r.csv: 1 new, 1 updated PVs",
    )
    assert recorded.details == {
        "count": 2,
        "addresses": ["NEW:A", "SIM:PV0"],
        "file": "r.csv",
        "new": 1,
        "updated": 1,
        "unchanged": 1,
        "new_tags": [],
    }


@pytest.mark.parametrize("csv", ["Setpoint,Readback\nSIM:PV0,\n", "Setpoint,Readback\nBAD NAME,\n"])
@pytest.mark.django_db
def test_an_import_that_writes_nothing_is_not_recorded(pvs, csv):
    services.import_registry("r.csv", csv, actor=None, via=AuditVia.COMMAND, dry_run=False)
    assert not AuditEntry.objects.exists()


@pytest.mark.django_db
def test_a_dry_run_import_is_not_recorded(db):
    csv = "Setpoint,Readback\nNEW:A,\n"
    report = services.import_registry("r.csv", csv, actor=None, via=AuditVia.ADMIN, dry_run=True)
    assert report.new == 1
    assert not AuditEntry.objects.exists()
