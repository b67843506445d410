"""Addresses with their protocol (issue 16) wherever they enter or leave the registry: the model,
the importers (CSV, .req), the exports, the API (fields, filter, errors), the admin, the live
page and PV sets. ``ca://X`` is stored as ``X`` (one PV), ``pva://X`` is another PV."""

import io
import json

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.urls import reverse

from pvs import pv_sets
from pvs.exporters import export_pvs_csv, export_pvs_req
from pvs.importers import import_pvs, uploaded_include_loader
from pvs.models import PV, PVSet
from squirrel_site.audit import AuditVia
from squirrel_site.models import AuditEntry

pytestmark = pytest.mark.django_db

PVS = "/api/v1/pvs/"
BULK = "/api/v1/pvs/bulk/"
CHANGELIST = reverse("admin:pvs_pv_changelist")
ADD = reverse("admin:pvs_pv_add")


def stored() -> list[tuple[str, str, str]]:
    return list(
        PV.objects.order_by("setpoint_address").values_list("setpoint_address", "readback_address", "config_address")
    )


def send(client, method: str, url: str, body):
    return getattr(client, method)(url, json.dumps(body), content_type="application/json")


@pytest.fixture
def mixed(db):
    """Four PVs: Channel Access only, pvAccess only, a CA setpoint with a pvAccess readback, and a
    pvAccess setpoint whose config address is Channel Access."""
    return {
        "ca": PV.objects.create(setpoint_address="SR:CA:SP", readback_address="SR:CA:RB"),
        "pva": PV.objects.create(setpoint_address="pva://SR:PVA:SP", readback_address="pva://SR:PVA:RB"),
        "ca_pva": PV.objects.create(setpoint_address="SR:MIX:SP", readback_address="pva://SR:MIX:RB"),
        "pva_cfg": PV.objects.create(setpoint_address="pva://SR:TBL", config_address="SR:TBL:CFG"),
    }


# --- the model ------------------------------------------------------------------------------


def test_saving_stores_the_registry_spelling():
    pv = PV.objects.create(setpoint_address="CA://SR:A", readback_address="PVA://SR:A:RB", config_address="ca://SR:C")
    assert (pv.setpoint_address, pv.readback_address, pv.config_address) == ("SR:A", "pva://SR:A:RB", "SR:C")
    assert stored() == [("SR:A", "pva://SR:A:RB", "SR:C")]
    assert (pv.setpoint_protocol, pv.readback_protocol, pv.config_protocol) == ("ca", "pva", "ca")
    assert PV(setpoint_address="X").readback_protocol is None
    assert PV(setpoint_address="X").config_protocol is None
    assert PV(setpoint_address="X", config_address="pva://X:CFG").config_protocol == "pva"


def test_full_clean_normalizes_and_the_unique_setpoint_holds_across_spellings():
    PV.objects.create(setpoint_address="SR:A")
    same = PV(setpoint_address="ca://SR:A")
    with pytest.raises(ValidationError) as refused:
        same.full_clean()
    assert same.setpoint_address == "SR:A"
    assert "already exists" in str(refused.value)
    other = PV(setpoint_address="pva://SR:A")
    other.full_clean()  # the pvAccess channel of the same name is another PV
    other.save()
    assert [a for a, _, _ in stored()] == ["SR:A", "pva://SR:A"]


def test_using_protocol_selects_pvs_with_any_address_on_it(mixed):
    def names(protocol):
        return sorted(PV.objects.using_protocol(protocol).values_list("setpoint_address", flat=True))

    assert names("pva") == ["SR:MIX:SP", "pva://SR:PVA:SP", "pva://SR:TBL"]
    assert names("ca") == ["SR:CA:SP", "SR:MIX:SP", "pva://SR:TBL"]


# --- importers and exports --------------------------------------------------------------------


def test_a_csv_with_mixed_protocols_imports_in_the_registry_spelling(db):
    report = import_pvs(
        "mixed.csv",
        b"Setpoint,Readback,Config,Area\n"
        b"ca://SR:Q1:SP,pva://SR:Q1:RB,,Ring\n"
        b"PVA://SR:TBL,,CA://SR:TBL:CFG,Ring\n"
        b"SR:Q2:SP,SR:Q2:RB,,Ring\n"
        b",pva://SR:BPM:X,,Ring\n",  # only a readback: a read-only PV
        dry_run=False,
    )
    assert report.ok and report.new == 4, report.errors
    assert stored() == [
        ("SR:Q1:SP", "pva://SR:Q1:RB", ""),
        ("SR:Q2:SP", "SR:Q2:RB", ""),
        ("pva://SR:BPM:X", "", ""),
        ("pva://SR:TBL", "", "SR:TBL:CFG"),
    ]
    assert PV.objects.get(setpoint_address="pva://SR:BPM:X").read_only
    assert report.addresses == ["SR:Q1:SP", "SR:Q2:SP", "pva://SR:BPM:X", "pva://SR:TBL"]


def test_a_csv_naming_one_pv_in_two_spellings_is_refused(db):
    report = import_pvs("twice.csv", b"Setpoint,Readback\nSR:A,\nca://SR:A,\npva://SR:A,\n", dry_run=False)
    assert [str(problem) for problem in report.errors] == ["twice.csv:3: Setpoint 'SR:A' is also on line 2."]
    assert not PV.objects.exists()


def test_a_csv_with_a_bad_protocol_names_the_cell(db):
    report = import_pvs("bad.csv", b"Setpoint,Readback\nhttp://SR:A,\nSR:B,pva://pva://SR:B\npva://,\n", dry_run=False)
    assert [str(problem) for problem in report.errors] == [
        "bad.csv:2: Setpoint 'http://SR:A': Unknown protocol 'http://': write pva://NAME for pvAccess, "
        "ca://NAME or NAME for Channel Access.",
        "bad.csv:3: Readback 'pva://pva://SR:B': The address has more than one protocol prefix ('://'); "
        "write one: pva://NAME or ca://NAME.",
        "bad.csv:4: Setpoint 'pva://': The channel name after 'pva://' is empty.",
    ]


def test_a_req_file_from_another_tool_with_pva_lines_imports(db):
    top = "# areaDetector pvaDriver and a QSRV group\n$(P)cam1:Gain\npva://$(P)Pva1:Image\nfile sub.req P=$(P)\n"
    sub = b"PVA://$(P)orbit:group,{'tolerance':0.1}\nca://$(P)cam1:Gain_RBV\n"
    report = import_pvs(
        "top.req", top, dry_run=False, macros={"P": "13SIM1:"}, include_loader=uploaded_include_loader({"sub.req": sub})
    )
    assert report.ok and report.new == 4, report.errors
    assert [a for a, _, _ in stored()] == [
        "13SIM1:cam1:Gain",
        "13SIM1:cam1:Gain_RBV",
        "pva://13SIM1:Pva1:Image",
        "pva://13SIM1:orbit:group",
    ]
    bad = import_pvs("bad.req", "pva://A\nftp://B\n", dry_run=True)
    assert [str(p) for p in bad.errors] == [
        "bad.req:2: PV 'ftp://B': Unknown protocol 'ftp://': write pva://NAME for pvAccess, "
        "ca://NAME or NAME for Channel Access."
    ]


def test_exports_write_the_stored_spelling_and_reimport_as_no_change(mixed):
    csv_out = io.StringIO()
    assert export_pvs_csv(PV.objects.all(), csv_out) == 4
    lines = csv_out.getvalue().splitlines()
    assert lines[1:] == [
        "SR:CA:SP,SR:CA:RB,,,,0.0,0.0,false,0,false",
        "SR:MIX:SP,pva://SR:MIX:RB,,,,0.0,0.0,false,0,false",
        "pva://SR:PVA:SP,pva://SR:PVA:RB,,,,0.0,0.0,false,0,false",
        "pva://SR:TBL,,,SR:TBL:CFG,,0.0,0.0,false,0,false",
    ]
    req_out = io.StringIO()
    assert export_pvs_req(PV.objects.all(), req_out) == 4
    assert req_out.getvalue().splitlines()[1:] == ["SR:CA:SP", "SR:MIX:SP", "pva://SR:PVA:SP", "pva://SR:TBL"]
    before = stored()

    again = import_pvs("export.csv", csv_out.getvalue(), dry_run=False)
    assert (again.new, again.updated, again.unchanged, again.applied) == (0, 0, 4, False)
    again = import_pvs("export.req", req_out.getvalue(), dry_run=False)
    assert (again.new, again.updated, again.unchanged, again.applied) == (0, 0, 4, False)
    assert stored() == before


def test_export_command_writes_a_req_file_that_reimports(mixed, tmp_path):
    path = tmp_path / "registry.req"
    call_command("export_pvs", str(path), stdout=io.StringIO())
    assert path.read_text().splitlines()[1:] == ["SR:CA:SP", "SR:MIX:SP", "pva://SR:PVA:SP", "pva://SR:TBL"]
    out = io.StringIO()
    call_command("export_pvs", "--format", "csv", stdout=out, stderr=io.StringIO())
    assert out.getvalue().startswith("Setpoint,Readback,")
    PV.objects.all().delete()
    call_command("import_pvs", str(path), stdout=io.StringIO())
    assert sorted(PV.objects.values_list("setpoint_address", flat=True)) == [
        "SR:CA:SP",
        "SR:MIX:SP",
        "pva://SR:PVA:SP",
        "pva://SR:TBL",
    ]


# --- the API ----------------------------------------------------------------------------------


@pytest.fixture
def as_editor(client, editor):
    client.force_login(editor)
    return client


def test_api_create_stores_ca_bare_and_pva_prefixed_with_protocols(as_editor, db):
    response = send(as_editor, "post", PVS, {"setpoint_address": "ca://SR:A", "readback_address": "PVA://SR:A:RB"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["setpoint_address"] == "SR:A" and body["readback_address"] == "pva://SR:A:RB"
    assert (body["setpoint_protocol"], body["readback_protocol"], body["config_protocol"]) == ("ca", "pva", None)
    assert stored() == [("SR:A", "pva://SR:A:RB", "")]
    entry = AuditEntry.objects.get()
    assert entry.summary == "Created PV SR:A"

    # The same PV in its other spelling is taken; the pvAccess channel of that name is not.
    response = send(as_editor, "post", PVS, {"setpoint_address": "SR:A"})
    assert response.status_code == 400
    response = send(as_editor, "post", BULK, [{"setpoint_address": "pva://SR:A"}, {"setpoint_address": "CA://SR:A"}])
    assert response.status_code == 400
    taken = f"PV {PV.objects.get().pk} has this setpoint address."
    assert response.json()["error"]["fields"] == {"1.setpoint_address": [taken]}
    response = send(as_editor, "post", BULK, [{"setpoint_address": "pva://SR:A"}, {"setpoint_address": "ca://SR:B"}])
    assert response.status_code == 201, response.content
    assert [a for a, _, _ in stored()] == ["SR:A", "SR:B", "pva://SR:A"]
    no_readback = as_editor.get(PVS, {"pv": "ca://SR:B"}).json()["results"]
    assert [(pv["setpoint_address"], pv["setpoint_protocol"], pv["readback_protocol"]) for pv in no_readback] == [
        ("SR:B", "ca", None)
    ]


def test_api_patch_and_bulk_update_normalize(as_editor, mixed):
    pv = mixed["ca"]
    response = send(as_editor, "patch", f"{PVS}{pv.pk}/", {"readback_address": "PVA://SR:CA:RB2"})
    assert response.status_code == 200 and response.json()["readback_protocol"] == "pva"
    response = send(as_editor, "patch", BULK, [{"id": pv.pk, "setpoint_address": "ca://SR:CA:SP2"}])
    assert response.json() == {"updated": 1, "unchanged": 0}
    pv.refresh_from_db()
    assert (pv.setpoint_address, pv.readback_address) == ("SR:CA:SP2", "pva://SR:CA:RB2")
    # Writing the stored spelling's other form again changes nothing.
    response = send(as_editor, "patch", BULK, [{"id": pv.pk, "setpoint_address": "SR:CA:SP2"}])
    assert response.json() == {"updated": 0, "unchanged": 1}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"protocol": "pva"}, ["SR:MIX:SP", "pva://SR:PVA:SP", "pva://SR:TBL"]),
        ({"protocol": "ca"}, ["SR:CA:SP", "SR:MIX:SP", "pva://SR:TBL"]),
        ({"protocol": "pva", "search": "SR:PVA"}, ["pva://SR:PVA:SP"]),
        ({"pv": ["CA://SR:CA:SP", "PVA://SR:TBL"]}, ["SR:CA:SP", "pva://SR:TBL"]),
        # The readback and config filters read either spelling, as `pv` does.
        ({"readback": "PVA://SR:MIX:RB"}, ["SR:MIX:SP"]),
        ({"readback": ["ca://SR:CA:RB", "pva://SR:PVA:RB"]}, ["SR:CA:SP", "pva://SR:PVA:SP"]),
        ({"readback": "SR:MIX:RB"}, []),  # the Channel Access channel of that name: no PV reads it
        ({"config": "ca://SR:TBL:CFG"}, ["pva://SR:TBL"]),
        ({"config": "pva://SR:TBL:CFG"}, []),
        # Search text with a protocol looks in addresses of that protocol, in the stored spelling.
        ({"search": "PVA://SR:MIX"}, ["SR:MIX:SP"]),
        ({"search": "pva://sr:"}, ["SR:MIX:SP", "pva://SR:PVA:SP", "pva://SR:TBL"]),
        ({"search": "CA://SR:TBL"}, ["pva://SR:TBL"]),  # its config address
        ({"search": "ca://SR:PVA"}, []),  # only pvAccess addresses hold SR:PVA
        ({"search": "SR:PVA"}, ["pva://SR:PVA:SP"]),  # without a protocol: as written, in any
    ],
)
def test_api_protocol_filter(as_editor, mixed, query, expected):
    response = as_editor.get(PVS, query)
    assert response.status_code == 200, response.content
    assert sorted(pv["setpoint_address"] for pv in response.json()["results"]) == expected


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"protocol": "http"}, "protocol", "Select a valid choice. http is not one of the available choices."),
        ({"pv": "ftp://X"}, "pv", "'ftp://X': Unknown protocol 'ftp://'"),
        ({"readback": "pva://"}, "readback", "'pva://'"),
        ({"config": "X\u0001"}, "config", "control"),
    ],
)
def test_api_bad_protocol_query_is_a_400(as_editor, mixed, query, field, message):
    response = as_editor.get(PVS, query)
    assert response.status_code == 400
    assert message in response.json()["error"]["fields"][field][0]


@pytest.mark.parametrize(
    ("address", "message"),
    [
        (
            "http://SR:A",
            "Unknown protocol 'http://': write pva://NAME for pvAccess, ca://NAME or NAME for Channel Access.",
        ),
        ("pva://", "The channel name after 'pva://' is empty."),
        (
            "pva://pva://SR:A",
            "The address has more than one protocol prefix ('://'); write one: pva://NAME or ca://NAME.",
        ),
        ("pva://SR A", "The address contains whitespace."),
        ("pva://SR\u0007A", "The address contains a control character."),
        ("pva://" + "a" * 79, "Ensure this field has no more than 84 characters."),
    ],
)
def test_api_bad_address_is_a_400_saying_why(as_editor, db, address, message):
    response = send(as_editor, "post", PVS, {"setpoint_address": "SR:OK", "readback_address": address})
    assert response.status_code == 400, response.content
    assert message in response.json()["error"]["fields"]["readback_address"]
    assert not PV.objects.exists()


def test_api_nul_in_an_address_is_refused_before_validation(as_editor, db):
    response = send(as_editor, "post", PVS, {"setpoint_address": "pva://SR\u0000A"})
    assert response.status_code == 400 and "NUL character" in response.content.decode()
    assert not PV.objects.exists()


# --- the admin and the pages ------------------------------------------------------------------


@pytest.fixture
def staff_client(client, admin_user):
    client.force_login(admin_user)
    return client


def test_admin_add_form_accepts_both_spellings_and_stores_the_registry_one(staff_client, db):
    form = {"setpoint_address": "PVA://SR:TBL", "readback_address": "ca://SR:TBL:RB", "config_address": ""}
    form |= {"device": "", "description": "", "abs_tolerance": "0", "rel_tolerance": "0", "restore_stage": "0"}
    response = staff_client.post(ADD, form)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    assert stored() == [("pva://SR:TBL", "SR:TBL:RB", "")]
    assert AuditEntry.objects.get().via == AuditVia.ADMIN

    again = staff_client.post(ADD, {**form, "setpoint_address": "pva://SR:TBL"})
    assert again.status_code == 200
    assert "PV with this Setpoint address already exists." in again.content.decode()
    bad = staff_client.post(ADD, {**form, "setpoint_address": "pvas://SR:TBL"})
    assert "Unknown protocol &#x27;pvas://&#x27;" in bad.content.decode()
    assert PV.objects.count() == 1


def test_admin_list_shows_and_filters_by_protocol(staff_client, mixed):
    response = staff_client.get(CHANGELIST)
    page = response.content.decode()
    assert '<td class="field-protocol">CA (readback PVA)</td>' in page
    assert '<td class="field-protocol">PVA</td>' in page
    assert "pvAccess" in page and "?protocol=pva" in page  # the filter's choices
    response = staff_client.get(CHANGELIST, {"protocol": "pva"})
    names = sorted(pv.setpoint_address for pv in response.context["cl"].result_list)
    assert names == ["SR:MIX:SP", "pva://SR:PVA:SP", "pva://SR:TBL"]


def test_api_shows_each_address_protocol(as_editor, mixed):
    by_setpoint = {pv["setpoint_address"]: pv for pv in as_editor.get(PVS).json()["results"]}
    protocols = {
        address: (pv["setpoint_protocol"], pv["readback_protocol"], pv["config_protocol"])
        for address, pv in by_setpoint.items()
    }
    assert protocols == {
        "SR:CA:SP": ("ca", "ca", None),
        "pva://SR:PVA:SP": ("pva", "pva", None),
        "SR:MIX:SP": ("ca", "pva", None),
        "pva://SR:TBL": ("pva", None, "ca"),
    }


def test_admin_search_with_a_protocol_finds_the_stored_spelling(staff_client, mixed):
    def found(text):
        response = staff_client.get(CHANGELIST, {"q": text})
        return sorted(pv.setpoint_address for pv in response.context["cl"].result_list)

    assert found("PVA://SR:MIX") == ["SR:MIX:SP"]
    assert found("ca://SR:TBL:CFG") == ["pva://SR:TBL"]
    assert found("ca://SR:PVA") == []
    assert found("SR:CA") == ["SR:CA:SP"]  # Django's own search still, without a protocol


def test_live_page_search_and_address_filters_take_either_spelling(staff_client, mixed):
    for query, expected in [
        ({"search": "PVA://SR:PVA"}, ["pva://SR:PVA:SP"]),
        ({"search": "ca://SR:MIX"}, ["SR:MIX:SP"]),
        ({"pv": "CA://SR:CA:SP"}, ["SR:CA:SP"]),
    ]:
        response = staff_client.get(reverse("pvs:live"), query)
        assert [pv.setpoint_address for pv in response.context["page"].rows] == expected, query


def test_live_page_shows_protocol_badges_and_filters_by_protocol(staff_client, mixed):
    page = staff_client.get(reverse("pvs:live")).content.decode()
    assert '<option value="pva">pvAccess</option>' in page and '<option value="" selected>any</option>' in page
    assert 'class="badge protocol pva" title="Setpoint over pvAccess">PVA</span>' in page
    assert 'title="Readback over pvAccess">PVA</span>' in page  # SR:MIX's readback differs from its setpoint
    response = staff_client.get(reverse("pvs:live"), {"protocol": "ca"})
    assert [pv.setpoint_address for pv in response.context["page"].rows] == ["SR:CA:SP", "SR:MIX:SP", "pva://SR:TBL"]
    refused = staff_client.get(reverse("pvs:live"), {"protocol": "http"})
    assert "Select a valid choice" in refused.content.decode() and not refused.context["page"].rows


def test_pv_set_lists_take_either_spelling(mixed, admin_user):
    addresses = pv_sets.parse_addresses("ca://SR:CA:SP, SR:CA:SP PVA://SR:TBL")
    assert addresses == ["SR:CA:SP", "pva://SR:TBL"]
    assert pv_sets.pv_ids(addresses) == [mixed["ca"].pk, mixed["pva_cfg"].pk]
    with pytest.raises(pv_sets.PVSetError, match="Not valid addresses: http://X"):
        pv_sets.parse_addresses("http://X")


def test_a_pv_set_may_select_by_protocol_through_the_api_and_its_page(client, admin_user, mixed):
    client.force_login(admin_user)
    body = {"name": "pvAccess", "filters": {"protocol": "pva"}, "pvs": ["ca://SR:CA:SP"]}
    created = send(client, "post", "/api/v1/pv-sets/", body)
    assert created.status_code == 201, created.content
    assert (created.json()["filters"], created.json()["pvs"]) == ({"protocol": "pva"}, ["SR:CA:SP"])
    resolved = client.get(f"/api/v1/pv-sets/{created.json()['id']}/pvs/").json()["results"]
    assert sorted(pv["setpoint_address"] for pv in resolved) == [
        "SR:CA:SP",
        "SR:MIX:SP",
        "pva://SR:PVA:SP",
        "pva://SR:TBL",
    ]
    refused = send(client, "post", "/api/v1/pv-sets/", {"name": "bad", "filters": {"protocol": "http"}})
    assert refused.status_code == 400
    assert refused.json()["error"]["fields"] == {"filters.protocol": ['"http" is not a valid choice.']}

    # The set's page says the filter in words; its form edits it.
    page = client.get(reverse("pvs:pv_set", args=[created.json()["id"]])).content.decode()
    assert "PVs with an address on pvAccess" in page
    form = {"name": "Channel Access only", "description": "", "protocol": "ca", "pv_list": ""}
    response = client.post(reverse("pvs:pv_set_new"), form)
    assert response.status_code == 302, response.content.decode()
    pv_set = PVSet.objects.get(name="Channel Access only")
    assert pv_set.filters == {"protocol": "ca"}
    edit = client.get(reverse("pvs:pv_set_edit", args=[pv_set.pk])).content.decode()
    assert '<option value="ca" selected>Channel Access</option>' in edit
