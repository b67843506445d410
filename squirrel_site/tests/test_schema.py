"""The OpenAPI schema (/api/v1/schema/) and its docs page (/api/v1/docs/)."""

import re

import pytest
import yaml
from django.core.management import call_command
from drf_spectacular.generators import SchemaGenerator

SCHEMA_URL = "/api/v1/schema/"
DOCS_URL = "/api/v1/docs/"


@pytest.fixture(scope="module")
def schema() -> dict:
    """The schema as the server generates it (no request, no database)."""
    return SchemaGenerator().get_schema(request=None, public=True)


def operations(schema: dict):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def test_the_schema_validates_with_no_warnings(tmp_path):
    # The command raises on any generator warning or error, and on an invalid OpenAPI document.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))


def test_every_operation_documents_the_error_envelope_for_401_and_403(schema):
    for name, operation in operations(schema):
        if {} in operation.get("security", []):
            continue  # public (the health probe): see the next test
        for status in ("401", "403"):
            content = operation["responses"][status]["content"]
            assert content == {"application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}}, name


def test_public_operations_document_neither_401_nor_403(schema):
    public = [(name, operation) for name, operation in operations(schema) if {} in operation.get("security", [])]
    assert [name for name, _ in public] == ["GET /api/v1/health/"]
    for name, operation in public:
        assert not {"401", "403"} & set(operation["responses"]), name


def test_operations_that_take_a_body_document_400_413_and_415(schema):
    with_body = [(name, operation) for name, operation in operations(schema) if "requestBody" in operation]
    assert with_body
    for name, operation in with_body:
        assert {"400", "413", "415"} <= set(operation["responses"]), name


def test_json_bodies_are_the_only_request_format_but_for_imports(schema):
    formats = {
        name: set(operation["requestBody"]["content"])
        for name, operation in operations(schema)
        if "requestBody" in operation
    }
    assert formats.pop("POST /api/v1/snapshots/import/") == {"multipart/form-data"}
    assert set().union(*formats.values()) == {"application/json"}


def test_jobs_answering_202_are_documented(schema):
    paths = schema["paths"]
    job = {"$ref": "#/components/schemas/Job"}
    for path in ("/api/v1/snapshots/", "/api/v1/restore-previews/", "/api/v1/restore-previews/{id}/execute/"):
        assert paths[path]["post"]["responses"]["202"]["content"]["application/json"]["schema"] == job, path


def test_export_documents_each_format(schema):
    export = schema["paths"]["/api/v1/snapshots/{id}/export/"]["get"]
    assert set(export["responses"]["200"]["content"]) == {"application/json", "text/csv", "text/plain"}
    (fmt,) = [p for p in export["parameters"] if p["name"] == "format"]
    assert fmt["schema"]["enum"] == ["csv", "json", "sav"]


def test_compare_parameters_come_from_its_form(schema):
    parameters = {p["name"]: p for p in schema["paths"]["/api/v1/compare/"]["get"]["parameters"]}
    assert parameters["a"]["required"] is True
    assert parameters["abs_tol"]["schema"] == {"type": "number", "minimum": 0}
    assert parameters["status"]["schema"]["items"]["enum"][0] == "out_of_tolerance"
    assert parameters["tag"]["schema"] == {"type": "array", "items": {"type": "integer"}}
    assert parameters["page_size"]["schema"]["maximum"] == 1000


def test_anonymous_cannot_read_the_schema(client, db):
    response = client.get(SCHEMA_URL)
    assert response.status_code == 401 and response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "not_authenticated"


def test_a_token_reads_the_schema_as_yaml_or_json(client, admin_user):
    from knox.models import AuthToken

    _, token = AuthToken.objects.create(user=admin_user)
    as_yaml = client.get(SCHEMA_URL, HTTP_AUTHORIZATION=f"Token {token}")
    assert as_yaml.status_code == 200 and as_yaml["Content-Type"].startswith("application/vnd.oai.openapi")
    as_json = client.get(SCHEMA_URL, HTTP_AUTHORIZATION=f"Token {token}", HTTP_ACCEPT="application/json")
    assert as_json.json() == yaml.safe_load(as_yaml.content)
    assert as_json.json()["info"]["title"] == "Squirrel API"


def test_the_docs_page_sends_a_visitor_to_log_in(client, db):
    response = client.get(DOCS_URL)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next=")


def test_the_docs_page_loads_swagger_ui_from_this_server_only(client, viewer):
    client.force_login(viewer)
    page = client.get(DOCS_URL).text
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert SCHEMA_URL in client.get(f"{DOCS_URL}?script=").text  # the start-up script, a file for the CSP
    assert not re.findall(r"(?:src|href)=\"(?:https?:)?//", page)


def test_a_bulk_update_item_requires_its_id_and_nothing_else(schema):
    body = schema["paths"]["/api/v1/pvs/bulk/"]["patch"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["items"] == {"$ref": "#/components/schemas/PVChangeRequest"}
    assert schema["components"]["schemas"]["PVChangeRequest"]["required"] == ["id"]


def test_bulk_bodies_state_how_many_items_they_take(schema, settings):
    paths = schema["paths"]
    for path, method in (("/api/v1/pvs/bulk/", "post"), ("/api/v1/pvs/bulk/", "patch")):
        body = paths[path][method]["requestBody"]["content"]["application/json"]["schema"]
        assert (body["minItems"], body["maxItems"]) == (1, settings.API_MAX_ITEMS), method
    ids = schema["components"]["schemas"]["PVIdsRequest"]["properties"]["ids"]
    assert (ids["minItems"], ids["maxItems"], ids["items"]["maximum"]) == (1, settings.API_MAX_ITEMS, 2**63 - 1)


def test_bulk_answers_are_documented(schema):
    paths = schema["paths"]
    answers = {
        ("/api/v1/pvs/bulk/", "post", "201"): "PVBulkCreated",
        ("/api/v1/pvs/bulk/", "patch", "200"): "PVBulkUpdated",
        ("/api/v1/pvs/bulk-delete/", "post", "200"): "PVBulkDeleted",
        ("/api/v1/tags/{id}/", "delete", "200"): "VocabularyDeleted",
        ("/api/v1/tag-groups/{id}/", "delete", "200"): "VocabularyDeleted",
    }
    for (path, method, status), component in answers.items():
        content = paths[path][method]["responses"][status]["content"]["application/json"]
        assert content["schema"] == {"$ref": f"#/components/schemas/{component}"}, (path, method)


def test_registry_writes_that_can_conflict_document_409(schema):
    conflicting = {
        (path, method)
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
        if "409" in operation["responses"]
    }
    kinds = ("pvs", "tags", "tag-groups")
    writes = {(f"/api/v1/{kind}/", "post") for kind in kinds}
    writes |= {(f"/api/v1/{kind}/{{id}}/", method) for kind in kinds for method in ("put", "patch")}
    assert conflicting == writes | {("/api/v1/pvs/bulk/", "post"), ("/api/v1/pvs/bulk/", "patch")}


def test_the_read_only_filter_is_a_boolean(schema):
    (read_only,) = [p for p in schema["paths"]["/api/v1/pvs/"]["get"]["parameters"] if p["name"] == "read_only"]
    assert read_only["schema"] == {"type": "boolean"}
