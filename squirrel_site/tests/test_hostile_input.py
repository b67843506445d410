"""Hostile or odd input answers 400 (or a readable form error), never 500, and stores nothing.

Each test sends one input through the real request path (Django's test client, or the ASGI app
through channels' communicator for the WebSocket) and asserts the refusal and that nothing was
written. The checks live in squirrel_site.untrusted (NUL characters, JSON nesting), the admin's
BoundedChangeList (impossible dates) and the forms (page numbers).
"""

import io

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.contrib import admin
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from pvs.models import PV
from snapshots.models import Snapshot
from squirrel_site.models import AuditEntry

IMPORT_PVS = reverse("admin:pvs_pv_import")
IMPORT_SNAPSHOT = "/api/v1/snapshots/import/"
DEEP_JSON = "[" * 100_000 + "]" * 100_000
HUGE = "99999999999999999999"


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    client.raise_request_exception = False  # a 500 is an answer to assert on, not an exception
    return client


def registry_errors(response) -> list[str]:
    assert response.status_code == 200
    return [str(problem) for problem in response.context["report"].errors]


def snapshot_upload(name: str, content: bytes) -> io.BytesIO:
    upload = io.BytesIO(content)
    upload.name = name
    return upload


# --- NUL characters in uploaded files ---------------------------------------------------------


def test_a_nul_byte_in_a_registry_csv_is_a_form_error_with_file_and_line(admin_client, db):
    upload = SimpleUploadedFile("registry.csv", b"Setpoint,Readback,Description\nA:1,,ok\nA:2,,bad\x00\n")

    response = admin_client.post(IMPORT_PVS, {"file": upload, "apply": "1"})

    assert registry_errors(response) == [
        "registry.csv:3: The file contains a NUL character (0x00), which text here may not hold."
    ]
    assert not PV.objects.exists() and not AuditEntry.objects.exists()


def test_a_nul_byte_in_a_req_file_is_a_form_error_with_file_and_line(admin_client, db):
    upload = SimpleUploadedFile("ioc.req", b"A:1\nA:\x002\n")

    response = admin_client.post(IMPORT_PVS, {"file": upload, "apply": "1"})

    assert registry_errors(response) == [
        "ioc.req:2: The file contains a NUL character (0x00), which text here may not hold."
    ]
    assert not PV.objects.exists()


def test_a_nul_byte_in_an_included_req_file_is_an_error_on_the_file_line(admin_client, db):
    main = SimpleUploadedFile("main.req", b"A:1\nfile inc.req\n")
    include = SimpleUploadedFile("inc.req", b"B:1\n\x00\n")

    response = admin_client.post(IMPORT_PVS, {"file": main, "includes": [include], "apply": "1"})

    assert registry_errors(response) == [
        "main.req:2: Cannot include 'inc.req': line 2: The file contains a NUL character (0x00), "
        "which text here may not hold."
    ]
    assert not PV.objects.exists()


def test_macro_references_nested_thousands_deep_in_a_req_file_are_a_form_error(admin_client, db):
    upload = SimpleUploadedFile("ioc.req", ("$(" * 5000 + "X" + ")" * 5000).encode())

    response = admin_client.post(IMPORT_PVS, {"file": upload, "apply": "1"})

    assert registry_errors(response) == ["ioc.req:1: Macro references are nested more than 16 deep."]
    assert not PV.objects.exists()


def test_import_pvs_command_reports_a_nul_byte_in_one_line_and_fails(db, tmp_path):
    path = tmp_path / "registry.csv"
    path.write_bytes(b"Setpoint,Readback\nA:1,\x00\n")
    stderr = io.StringIO()

    with pytest.raises(CommandError, match="1 error; nothing imported"):
        call_command("import_pvs", str(path), stderr=stderr)

    assert stderr.getvalue() == (f"{path}:2: The file contains a NUL character (0x00), which text here may not hold.\n")
    assert not PV.objects.exists()


def test_a_nul_byte_in_a_snapshot_csv_import_is_400(admin_client, db):
    content = b'pv_name,value_type,setpoint\nA:1,string,"""a\x00b"""\n'

    response = admin_client.post(IMPORT_SNAPSHOT, {"file": snapshot_upload("s.csv", content)})

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["file"] == [
        "s.csv:2: The file contains a NUL character (0x00), which text here may not hold."
    ]
    assert not Snapshot.objects.exists()


def test_a_nul_escape_in_a_snapshot_json_import_is_400(admin_client, db):
    document = '{"values": [{"pv_name": "A:1", "value_type": "string", "setpoint": "a\\u0000b"}]}'

    response = admin_client.post(IMPORT_SNAPSHOT, {"file": snapshot_upload("s.json", document.encode())})

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["file"] == [
        "s.json: Not valid JSON: text may not contain NUL characters (\\u0000)"
    ]
    assert not Snapshot.objects.exists()


def test_a_nul_in_a_snapshot_import_title_is_400(admin_client, db):
    content = b'{"values": [{"pv_name": "A:1", "value_type": "float", "setpoint": 1.0}]}'

    response = admin_client.post(IMPORT_SNAPSHOT, {"file": snapshot_upload("s.json", content), "title": "a\x00b"})

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["file"] == [
        "s.json: The title contains a NUL character (0x00), which text here may not hold."
    ]
    assert not Snapshot.objects.exists()


def test_a_nul_in_an_admin_form_field_is_a_form_error(admin_client, db):
    response = admin_client.post(reverse("admin:pvs_pv_add"), {"setpoint_address": "A:1", "description": "x\x00y"})

    assert response.status_code == 200 and b"Null characters are not allowed." in response.content
    assert not PV.objects.exists()


# --- JSON nested too deeply -------------------------------------------------------------------


def test_deeply_nested_json_in_a_snapshot_import_is_400(admin_client, db):
    response = admin_client.post(IMPORT_SNAPSHOT, {"file": snapshot_upload("s.json", DEEP_JSON.encode())})

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["file"] == ["s.json: Not valid JSON: nested too deeply"]
    assert not Snapshot.objects.exists()


def test_deeply_nested_json_in_a_snapshot_csv_cell_is_400(admin_client, db):
    content = f"pv_name,value_type,setpoint\nA:1,float_array,{DEEP_JSON}\n".encode()

    response = admin_client.post(IMPORT_SNAPSHOT, {"file": snapshot_upload("s.csv", content)})

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["file"] == ["s.csv:2: setpoint: not valid JSON (nested too deeply)"]
    assert not Snapshot.objects.exists()


def test_deeply_nested_json_in_an_api_body_is_400(admin_client, db):
    response = admin_client.post("/api/v1/pvs/", DEEP_JSON, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["message"] == "JSON parse error - nested too deeply"
    assert not PV.objects.exists()


def test_deeply_nested_json_on_the_live_socket_is_an_error_message_and_the_socket_stays_open(
    client, viewer, redis_db, transactional_db
):
    client.force_login(viewer)
    headers = [
        (b"origin", b"http://127.0.0.1"),
        (b"host", b"127.0.0.1"),
        (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()),
    ]
    from squirrel_site.asgi import application

    async def scenario():
        communicator = WebsocketCommunicator(application, "/ws/live/", headers=headers)
        connected, _ = await communicator.connect()
        assert connected
        await communicator.send_to(text_data=DEEP_JSON)
        error = await communicator.receive_json_from(timeout=5)
        await communicator.send_json_to({"subscribe": ["A:1"]})
        after = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return error, after

    error, after = async_to_sync(scenario)()

    assert error == {"type": "error", "message": "Messages must be JSON objects: nested too deeply."}
    assert (after["type"], after["full"], list(after["values"])) == ("values", True, ["A:1"])


# --- Page numbers -----------------------------------------------------------------------------


@pytest.fixture
def two_snapshots(admin_user):
    return [Snapshot.objects.create(title=title, created_by=admin_user, mode="cache") for title in "AB"]


def test_a_page_number_past_bigint_on_the_compare_page_is_a_form_error(admin_client, two_snapshots):
    a, b = two_snapshots

    response = admin_client.get(reverse("snapshots:compare"), {"a": a.id, "b": b.id, "page": HUGE})

    assert response.status_code == 400
    assert list(response.context["errors"]) == ["page"]


def test_a_page_number_past_bigint_on_the_compare_api_is_400(admin_client, two_snapshots):
    a, b = two_snapshots

    response = admin_client.get("/api/v1/compare/", {"a": a.id, "b": b.id, "page": HUGE})

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["page"]


def test_the_largest_compare_page_is_an_empty_page(admin_client, two_snapshots):
    from snapshots.comparison.forms import MAX_PAGE

    a, b = two_snapshots

    response = admin_client.get("/api/v1/compare/", {"a": a.id, "b": b.id, "page": MAX_PAGE, "page_size": 1000})

    assert response.status_code == 200 and response.json()["results"] == []


@pytest.mark.parametrize("page", [HUGE, "-3", "0", "x"])
@pytest.mark.parametrize("url", ["/snapshots/", "/live/"])
def test_odd_page_numbers_on_the_pages_show_a_page(admin_client, url, page):
    assert admin_client.get(url, {"page": page}).status_code == 200


@pytest.mark.parametrize("size", [HUGE, "-1", "0"])
def test_odd_page_sizes_on_the_api_lists_are_400_or_capped(admin_client, db, size):
    response = admin_client.get("/api/v1/pvs/", {"page_size": size})

    assert response.status_code == (200 if size == HUGE else 400)


# --- Query strings with NUL, and impossible dates, in the admin lists --------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/admin/pvs/pv/?device=%00",
        "/admin/squirrel_site/auditentry/?action=%00",
        "/admin/squirrel_site/auditentry/?via=%00",
        "/admin/snapshots/snapshot/?mode=%00",
        "/admin/pvs/pv/?q=%00",
        "/admin/pvs/pv/?%00=1",
    ],
)
def test_a_nul_in_an_admin_list_filter_is_400(admin_client, db, url):
    response = admin_client.get(url)

    assert response.status_code == 400
    assert b"The query string contains a NUL character" in response.content


def test_the_400_for_a_nul_in_the_query_carries_the_security_headers(admin_client, db):
    response = admin_client.get("/snapshots/?q=%00")

    assert response.status_code == 400
    assert (response["X-Frame-Options"], response["X-Content-Type-Options"]) == ("DENY", "nosniff")


def test_every_admin_list_refuses_a_nul_in_its_search_box(admin_client, db):
    lists = [
        reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist") for model in admin.site._registry
    ]

    statuses = {url: admin_client.get(url, {"q": "\x00"}).status_code for url in lists}

    assert set(statuses.values()) == {400}, statuses


def test_a_nul_in_an_api_query_is_400_with_the_envelope(admin_client, db):
    response = admin_client.get("/api/v1/pvs/", {"search": "\x00"})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"


@pytest.mark.parametrize(
    "query",
    [
        f"created_at__year={HUGE}",
        "created_at__year=9999",
        f"created_at__year=2024&created_at__month={HUGE}",
        f"created_at__year=2024&created_at__month=1&created_at__day={HUGE}",
    ],
)
@pytest.mark.parametrize("model", ["snapshot", "restore"])
def test_an_impossible_date_in_an_admin_drill_down_shows_the_whole_list(admin_client, db, model, query):
    url = f"/admin/snapshots/{model}/"

    response = admin_client.get(f"{url}?{query}")

    assert (response.status_code, response["Location"]) == (302, f"{url}?e=1")


def test_a_possible_date_in_the_admin_drill_down_still_filters(admin_client, two_snapshots):
    response = admin_client.get("/admin/snapshots/snapshot/?created_at__year=2001&created_at__month=2")

    assert response.status_code == 200 and response.context["cl"].result_count == 0
