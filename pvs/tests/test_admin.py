import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from pvs.models import PV
from squirrel_site.models import AuditEntry
from tags.models import Tag, TagGroup

CHANGELIST = reverse("admin:pvs_pv_changelist")


@pytest.fixture
def tagged_magnets(db):
    area = TagGroup.objects.create(name="Area")
    subsystem = TagGroup.objects.create(name="Subsystem")
    linac = Tag.objects.create(group=area, name="LINAC")
    und = Tag.objects.create(group=area, name="UND")
    magnets = Tag.objects.create(group=subsystem, name="Magnets")
    pvs = PV.objects.bulk_create(
        PV(
            setpoint_address=f"SIM:MAG:Q{i:03d}:I_SP",
            readback_address=f"SIM:MAG:Q{i:03d}:I_RB" if i % 2 else "",
            device=f"Q{i:03d}",
        )
        for i in range(300)
    )
    PV.tags.through.objects.bulk_create(
        [PV.tags.through(pv_id=pv.id, tag_id=(linac if i < 200 else und).id) for i, pv in enumerate(pvs)]
        + [PV.tags.through(pv_id=pv.id, tag_id=magnets.id) for pv in pvs[:10]]
    )
    return {"linac": linac, "und": und, "magnets": magnets, "area": area}


@pytest.fixture
def staff_client(client, admin_user):
    client.force_login(admin_user)
    return client


def _rows(response):
    return response.context["cl"].result_count


def test_changelist_page_costs_a_fixed_number_of_queries(staff_client, tagged_magnets, django_assert_max_num_queries):
    with django_assert_max_num_queries(12):
        response = staff_client.get(CHANGELIST)
    assert response.status_code == 200
    assert "Area: LINAC" in response.content.decode()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"q": "Q01"}, 10),
        ({"device": "Q00"}, 10),
        ({"has_readback": "yes"}, 150),
        ({"has_readback": "no"}, 150),
        ({"read_only__exact": "1"}, 0),
    ],
)
def test_changelist_filters_and_search(staff_client, tagged_magnets, query, expected):
    assert _rows(staff_client.get(CHANGELIST, query)) == expected


def test_tag_group_and_tag_filters(staff_client, tagged_magnets):
    assert _rows(staff_client.get(CHANGELIST, {"tag_group": tagged_magnets["area"].id})) == 300
    assert _rows(staff_client.get(CHANGELIST, {"tag": tagged_magnets["und"].id})) == 100


def test_tag_filter_lists_only_tags_of_the_chosen_group(staff_client, tagged_magnets):
    response = staff_client.get(CHANGELIST, {"tag_group": tagged_magnets["area"].id})
    tag_filter = next(f for f in response.context["cl"].filter_specs if f.parameter_name == "tag")
    assert [label for _, label in tag_filter.lookup_choices] == ["Area: LINAC", "Area: UND"]


def test_add_tags_action_asks_for_tags_then_applies(staff_client, tagged_magnets):
    ids = list(PV.objects.order_by("id").values_list("id", flat=True)[:3])
    post = {"action": "add_tags", ACTION_CHECKBOX_NAME: ids, "index": 0}
    page = staff_client.post(CHANGELIST, post)
    assert page.status_code == 200 and b"This applies to <strong>3</strong> PVs" in page.content
    staff_client.post(CHANGELIST, {**post, "apply": "Apply", "tags": [tagged_magnets["und"].id]})
    assert PV.objects.filter(id__in=ids, tags=tagged_magnets["und"]).count() == 3


def test_select_across_applies_to_every_filtered_pv(staff_client, tagged_magnets):
    post = {
        "action": "mark_read_only",
        "select_across": "1",
        "index": 0,
        ACTION_CHECKBOX_NAME: [PV.objects.first().id],
    }
    staff_client.post(f"{CHANGELIST}?tag={tagged_magnets['und'].id}", post)
    assert PV.objects.filter(read_only=True).count() == 100


def test_set_tolerances_with_a_negative_value_shows_the_error_and_changes_nothing(staff_client, tagged_magnets):
    post = {
        "action": "set_tolerances",
        ACTION_CHECKBOX_NAME: [PV.objects.first().id],
        "index": 0,
        "apply": "Apply",
        "abs_tolerance": "-1",
        "rel_tolerance": "",
    }
    response = staff_client.post(CHANGELIST, post)
    assert b"may not be negative" in response.content
    assert not PV.objects.exclude(abs_tolerance=0).exists()


def test_remove_tags_action(staff_client, tagged_magnets):
    post = {
        "action": "remove_tags",
        "select_across": "1",
        "index": 0,
        "apply": "Apply",
        ACTION_CHECKBOX_NAME: [PV.objects.first().id],
        "tags": [tagged_magnets["magnets"].id],
    }
    staff_client.post(CHANGELIST, post)
    assert not tagged_magnets["magnets"].pvs.exists()


def test_pv_form_rejects_an_invalid_address(staff_client, tagged_magnets):
    response = staff_client.post(
        reverse("admin:pvs_pv_add"),
        {"setpoint_address": "BAD ADDRESS", "abs_tolerance": "0", "rel_tolerance": "0", "restore_stage": "0"},
    )
    assert response.status_code == 200
    assert b"The address contains whitespace." in response.content
    assert not PV.objects.filter(setpoint_address="BAD ADDRESS").exists()


def test_tag_autocomplete_finds_tags_by_name(staff_client, tagged_magnets):
    response = staff_client.get(
        reverse("admin:autocomplete"),
        {"term": "und", "app_label": "pvs", "model_name": "pv", "field_name": "tags"},
    )
    assert [r["text"] for r in response.json()["results"]] == ["Area: UND"]


def test_tag_group_page_shows_its_tags_inline(staff_client, tagged_magnets):
    response = staff_client.get(reverse("admin:tags_taggroup_change", args=[tagged_magnets["area"].id]))
    assert b"LINAC" in response.content and b"UND" in response.content


IMPORT = reverse("admin:pvs_pv_import")
GOOD_CSV = b"Setpoint,Readback,Description,Area\nSIM:NEW:SP,SIM:NEW:RB,new magnet,LINAC\nSIM:MAG:Q000:I_SP,,,UND\n"


def _upload(name, content):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, content, content_type="text/csv")


def test_import_check_reports_counts_and_writes_nothing(staff_client, tagged_magnets):
    response = staff_client.post(IMPORT, {"file": _upload("reg.csv", GOOD_CSV), "check": "1"})
    report = response.context["report"]
    assert (report.new, report.updated, report.applied) == (1, 1, False)
    assert b"Check passed: nothing has been written yet" in response.content
    assert not PV.objects.filter(setpoint_address="SIM:NEW:SP").exists()


def test_import_lists_every_error_with_its_line_and_imports_nothing(staff_client, tagged_magnets):
    bad = b"Setpoint,Readback,Abs Tolerance\nSIM:OK,,0.1\nBAD NAME,,0\nSIM:NEG,,-1\n"
    response = staff_client.post(IMPORT, {"file": _upload("bad.csv", bad), "apply": "1"})
    errors = [str(e) for e in response.context["report"].errors]
    assert [e.split(":")[1] for e in errors] == ["3", "4"]
    assert b"2 errors: nothing was imported" in response.content
    assert not PV.objects.filter(setpoint_address="SIM:OK").exists()


def test_import_applies_and_returns_to_the_list(staff_client, tagged_magnets):
    response = staff_client.post(IMPORT, {"file": _upload("reg.csv", GOOD_CSV), "apply": "1"})
    assert response.status_code == 302
    assert PV.objects.get(setpoint_address="SIM:NEW:SP").tags.get().name == "LINAC"


def test_importing_an_unchanged_file_is_a_success_not_a_loop(staff_client, tagged_magnets):
    staff_client.post(IMPORT, {"file": _upload("reg.csv", GOOD_CSV), "apply": "1"})
    response = staff_client.post(IMPORT, {"file": _upload("reg.csv", GOOD_CSV), "apply": "1"})
    assert response.status_code == 302


def test_import_req_with_uploaded_include_and_macros(staff_client, tagged_magnets):
    main = _upload("main.req", b"# magnets\n$(P)A:SP\nfile inc.req AREA=LI\n")
    include = _upload("inc.req", b"$(P)$(AREA):B:SP\n")
    staff_client.post(IMPORT, {"file": main, "includes": [include], "macros": "P=SIM:", "apply": "1"})
    assert PV.objects.filter(setpoint_address__in=["SIM:A:SP", "SIM:LI:B:SP"]).count() == 2


def test_import_rejects_a_malformed_macro_line_on_the_form(staff_client, tagged_magnets):
    response = staff_client.post(IMPORT, {"file": _upload("a.req", b"X\n"), "macros": "no equals", "check": "1"})
    assert b"Line 1: expected NAME=VALUE" in response.content


def test_export_all_downloads_csv_that_reimports_unchanged(staff_client, tagged_magnets):
    response = staff_client.get(reverse("admin:pvs_pv_export"))
    assert response["Content-Type"].startswith("text/csv")
    page = staff_client.post(IMPORT, {"file": _upload("export.csv", response.content), "check": "1"})
    report = page.context["report"]
    assert (report.new, report.updated, report.unchanged) == (0, 0, 300)


def test_import_page_needs_change_permission(client, make_user, tagged_magnets):
    viewer = make_user("viewer")
    viewer.is_staff = True
    viewer.save()
    client.force_login(viewer)
    assert client.get(IMPORT).status_code == 403


def test_bulk_actions_need_change_permission(client, make_user, tagged_magnets):
    viewer = make_user("viewer")
    viewer.is_staff = True
    viewer.save()
    client.force_login(viewer)
    post = {"action": "mark_read_only", "select_across": "1", "index": 0, ACTION_CHECKBOX_NAME: [PV.objects.first().id]}
    client.post(CHANGELIST, post)
    assert not PV.objects.filter(read_only=True).exists()


def test_import_page_links_back_to_the_pv_list(staff_client, tagged_magnets):
    page = staff_client.get(IMPORT).content.decode()
    assert f'href="{CHANGELIST}"' in page and "&rsaquo; Import PVs" in page


# --- Audit: every change made in the admin is one entry, via "admin" ------------------------

PV_FORM = {
    "setpoint_address": "SIM:FORM:SP",
    "readback_address": "",
    "config_address": "",
    "device": "",
    "description": "",
    "abs_tolerance": "0",
    "rel_tolerance": "0",
    "restore_stage": "0",
}


def _entry():
    return AuditEntry.objects.get()


def test_adding_a_pv_in_the_admin_is_recorded(staff_client, tagged_magnets, admin_user):
    response = staff_client.post(reverse("admin:pvs_pv_add"), {**PV_FORM, "tags": [tagged_magnets["und"].id]})
    assert response.status_code == 302
    pv = PV.objects.get(setpoint_address="SIM:FORM:SP")
    assert list(pv.tags.all()) == [tagged_magnets["und"]]
    entry = _entry()
    assert (entry.action, entry.via, entry.actor, entry.target_id) == ("pvs.created", "admin", admin_user, str(pv.id))


def test_editing_a_pv_in_the_admin_records_what_changed(staff_client, tagged_magnets):
    pv = PV.objects.get(setpoint_address="SIM:MAG:Q000:I_SP")
    form = {
        **PV_FORM,
        "setpoint_address": pv.setpoint_address,
        "device": "Q000",
        "abs_tolerance": "0.25",
        "tags": [tagged_magnets["linac"].id, tagged_magnets["magnets"].id],
    }
    response = staff_client.post(reverse("admin:pvs_pv_change", args=[pv.id]), form)
    assert response.status_code == 302
    assert PV.objects.get(pk=pv.pk).abs_tolerance == 0.25
    assert _entry().details["changes"] == {"abs_tolerance": [0.0, 0.25]}


def test_deleting_a_pv_in_the_admin_is_recorded(staff_client, tagged_magnets):
    pv = PV.objects.get(setpoint_address="SIM:MAG:Q000:I_SP")
    staff_client.post(reverse("admin:pvs_pv_delete", args=[pv.id]), {"post": "yes"})
    assert not PV.objects.filter(pk=pv.pk).exists()
    assert (_entry().action, _entry().summary) == ("pvs.deleted", "Deleted PV SIM:MAG:Q000:I_SP")


def test_delete_selected_is_one_entry(staff_client, tagged_magnets):
    ids = list(PV.objects.order_by("id").values_list("id", flat=True)[:3])
    staff_client.post(CHANGELIST, {"action": "delete_selected", ACTION_CHECKBOX_NAME: ids, "post": "yes"})
    assert not PV.objects.filter(id__in=ids).exists()
    assert (_entry().action, _entry().details["count"]) == ("pvs.deleted", 3)


def test_a_bulk_action_is_one_entry(staff_client, tagged_magnets):
    post = {"action": "mark_read_only", "select_across": "1", "index": 0, ACTION_CHECKBOX_NAME: [PV.objects.first().id]}
    staff_client.post(CHANGELIST, post)
    entry = _entry()
    assert (entry.action, entry.via, entry.summary, len(entry.details["addresses"])) == (
        "pvs.changed",
        "admin",
        "Marked 300 PVs read-only",
        100,
    )


def test_an_applied_import_is_one_entry(staff_client, tagged_magnets):
    staff_client.post(IMPORT, {"file": _upload("reg.csv", GOOD_CSV), "apply": "1"})
    entry = _entry()
    assert (entry.action, entry.via, entry.details["new"], entry.details["updated"]) == ("pvs.imported", "admin", 1, 1)


def test_a_checked_import_is_not_recorded(staff_client, tagged_magnets):
    staff_client.post(IMPORT, {"file": _upload("reg.csv", GOOD_CSV), "check": "1"})
    assert not AuditEntry.objects.exists()


def _checked(staff_client, content=GOOD_CSV, **post):
    """Check a file; the page's token for its "Import" button."""
    response = staff_client.post(IMPORT, {"file": _upload("reg.csv", content), "check": "1", **post})
    assert b'id="apply-checked"' in response.content and b'value="Import reg.csv"' in response.content
    return response.context["checked"]["token"]


def test_a_checked_file_is_imported_without_choosing_it_again(staff_client, tagged_magnets):
    token = _checked(staff_client)
    assert not PV.objects.filter(setpoint_address="SIM:NEW:SP").exists()
    response = staff_client.post(IMPORT, {"checked": token, "apply_checked": "Import reg.csv"})
    assert response.status_code == 302 and response["Location"] == reverse("admin:pvs_pv_changelist")
    assert PV.objects.get(setpoint_address="SIM:NEW:SP").tags.get().name == "LINAC"
    entry = _entry()
    assert (entry.action, entry.details["new"], entry.details["updated"]) == ("pvs.imported", 1, 1)


def test_a_checked_req_file_keeps_its_includes_and_macros(staff_client, tagged_magnets):
    main = _upload("main.req", b"# magnets\n$(P)A:SP\nfile inc.req AREA=LI\n")
    include = _upload("inc.req", b"$(P)$(AREA):B:SP\n")
    page = staff_client.post(IMPORT, {"file": main, "includes": [include], "macros": "P=SIM:", "check": "1"})
    token = page.context["checked"]["token"]
    staff_client.post(IMPORT, {"checked": token, "apply_checked": "1"})
    assert PV.objects.filter(setpoint_address__in=["SIM:A:SP", "SIM:LI:B:SP"]).count() == 2


def test_a_file_that_fails_its_check_offers_no_import_button(staff_client, tagged_magnets):
    response = staff_client.post(IMPORT, {"file": _upload("bad.csv", b"Setpoint\nBAD NAME\n"), "check": "1"})
    assert response.context["checked"] is None and b'id="apply-checked"' not in response.content


@pytest.mark.parametrize("change", ["altered", "other user", "expired"])
def test_a_checked_token_that_was_altered_is_another_users_or_expired_imports_nothing(
    staff_client, tagged_magnets, admin_user, django_user_model, change, monkeypatch
):
    token = _checked(staff_client)
    if change == "altered":
        token = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    elif change == "other user":
        other = django_user_model.objects.create_superuser("other", "o@example.org", "pw")
        staff_client.force_login(other)
    else:
        monkeypatch.setattr("pvs.checked_uploads.CHECKED_UPLOAD_MAX_AGE", -1)
    response = staff_client.post(IMPORT, {"checked": token, "apply_checked": "1"})
    assert response.status_code == 200 and b'id="import-refusal"' in response.content
    assert b"check it again" in response.content
    assert not PV.objects.filter(setpoint_address="SIM:NEW:SP").exists() and not AuditEntry.objects.exists()
