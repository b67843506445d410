"""Who may do what: every /api/v1/ operation and every WebSocket route, for each kind of user.

The tables below are the authorization matrix (docs/security.md explains the roles). Each cell is
what a real request through the test client (or a handshake through the real ASGI app) must give:
"ok" (the permission check passed: 2xx, or 400 for a payload refused after it), 401, 403, 404
for an object the user may not see, or "login" (a page for people sends a visitor to log in).
A completeness check walks the URL resolver and the Channels routing, so a new endpoint or route
fails the suite until it has its row here.
"""

import json
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.shortcuts import resolve_url
from django.urls import URLResolver, get_resolver, reverse
from django.utils import timezone

from jobs.models import Job, JobType
from pvs.models import PV, PVSet
from snapshots.models import Restore, RestorePreview, Snapshot, SnapshotMode
from snapshots.restore.preview import registry_fingerprint
from squirrel_site.asgi import application
from squirrel_site.routing import websocket_urlpatterns
from tags.models import Tag, TagGroup

ANONYMOUS, NO_ROLE = "anonymous", "no role"
USERS = (ANONYMOUS, NO_ROLE, "viewer", "editor", "operator", "admin")

# Expected outcomes, in USERS order.
READ = "401 403 ok ok ok ok"
SNAPSHOT_WRITE = "401 403 403 403 ok ok"  # add_snapshot / change_snapshot: operator and admin
RESTORE = "401 403 403 403 ok ok"  # add_restore: operator and admin
OPERATORS_JOB = "401 403 404 404 ok ok"  # the operator's own job; the admin role sees every job
CURATE = "401 403 403 ok 403 ok"  # add/change/delete of PVs, tags and tag groups: editor and admin
PV_SETS = "401 403 403 ok ok ok"  # add/change/delete of saved PV sets: editor, operator and admin
PAGE = "login 403 ok ok ok ok"  # the API's docs page, for people: any role

# (method, URL name, the object whose pk the URL takes, expected outcomes)
API = [
    ("GET", "snapshots-api:snapshot-list", None, READ),
    ("POST", "snapshots-api:snapshot-list", None, SNAPSHOT_WRITE),
    ("GET", "snapshots-api:snapshot-detail", "snapshot", READ),
    ("GET", "snapshots-api:snapshot-values", "snapshot", READ),
    ("GET", "snapshots-api:snapshot-export", "snapshot", READ),
    ("PUT", "snapshots-api:snapshot-tags", "snapshot", SNAPSHOT_WRITE),
    ("POST", "snapshots-api:snapshot-import-file", None, SNAPSHOT_WRITE),
    ("POST", "snapshots-api:restore-preview-list", None, RESTORE),
    ("GET", "snapshots-api:restore-preview-detail", "preview", READ),
    ("GET", "snapshots-api:restore-preview-items", "preview", READ),
    ("POST", "snapshots-api:restore-preview-execute", "preview", RESTORE),
    ("GET", "snapshots-api:restore-list", None, READ),
    ("GET", "snapshots-api:restore-detail", "restore", READ),
    ("GET", "snapshots-api:restore-items", "restore", READ),
    ("POST", "snapshots-api:restore-undo", "restore", RESTORE),
    ("GET", "snapshots-api:compare", None, READ),
    ("GET", "snapshots-api:compare-columns", None, READ),
    ("POST", "snapshots-api:compare-archive", None, SNAPSHOT_WRITE),
    ("GET", "snapshots-api:drift", None, READ),
    ("GET", "jobs-api:job-list", None, READ),
    ("GET", "jobs-api:job-detail", "job", OPERATORS_JOB),
    ("GET", "monitor-api:live-list", None, READ),
    ("GET", "pvs-api:pv-list", None, READ),
    ("POST", "pvs-api:pv-list", None, CURATE),
    ("GET", "pvs-api:pv-detail", "pv", READ),
    ("GET", "pvs-api:pv-history", "pv", READ),
    ("PUT", "pvs-api:pv-detail", "pv", CURATE),
    ("PATCH", "pvs-api:pv-detail", "pv", CURATE),
    ("DELETE", "pvs-api:pv-detail", "pv", CURATE),
    ("POST", "pvs-api:pv-bulk-create", None, CURATE),
    ("PATCH", "pvs-api:pv-bulk-create", None, CURATE),
    ("POST", "pvs-api:pv-bulk-delete", None, CURATE),
    ("GET", "pvs-api:pv-set-list", None, READ),
    ("POST", "pvs-api:pv-set-list", None, PV_SETS),
    ("GET", "pvs-api:pv-set-detail", "pv_set", READ),
    ("PUT", "pvs-api:pv-set-detail", "pv_set", PV_SETS),
    ("PATCH", "pvs-api:pv-set-detail", "pv_set", PV_SETS),
    ("DELETE", "pvs-api:pv-set-detail", "pv_set", PV_SETS),
    ("GET", "pvs-api:pv-set-pvs", "pv_set", READ),
    ("POST", "pvs-api:pv-set-members", "pv_set", PV_SETS),
    ("GET", "tags-api:tag-group-list", None, READ),
    ("POST", "tags-api:tag-group-list", None, CURATE),
    ("GET", "tags-api:tag-group-detail", "tag_group", READ),
    ("PUT", "tags-api:tag-group-detail", "tag_group", CURATE),
    ("PATCH", "tags-api:tag-group-detail", "tag_group", CURATE),
    ("DELETE", "tags-api:tag-group-detail", "tag_group", CURATE),
    ("GET", "tags-api:tag-list", None, READ),
    ("POST", "tags-api:tag-list", None, CURATE),
    ("GET", "tags-api:tag-detail", "tag", READ),
    ("PUT", "tags-api:tag-detail", "tag", CURATE),
    ("PATCH", "tags-api:tag-detail", "tag", CURATE),
    ("DELETE", "tags-api:tag-detail", "tag", CURATE),
    ("GET", "api-root", None, READ),
    ("GET", "api-schema", None, READ),
    ("GET", "api-docs", None, PAGE),
]

# The one operation open to everybody: load balancers call it without credentials, and it tells
# nothing about the machine's PVs (squirrel_site/tests/test_api_health.py checks what it says).
PUBLIC_API = [
    ("GET", "health", None, "ok ok ok ok ok ok"),
]

# (route, expected outcomes): a handshake is accepted ("ok") or refused (any other outcome).
SOCKETS = [
    ("ws/live/", READ),
    ("ws/jobs/<int:job_id>/", OPERATORS_JOB),
]


def _cases(table, named_by: int) -> list:
    """One test case per row and user: (row's fields..., user, expected outcome), named by the
    row's first `named_by` fields."""
    return [
        pytest.param(*row[:-1], user, expected, id=f"{' '.join(row[:named_by])} as {user}")
        for row in table
        for user, expected in zip(USERS, row[-1].split(), strict=True)
    ]


@pytest.fixture
def world(make_user):
    """The operator's snapshot, restore preview, restore (with nothing to undo) and job."""
    operator = make_user("operator", "operator")
    snapshot = Snapshot.objects.create(title="Before MD", created_by=operator, mode=SnapshotMode.CACHE)
    preview = RestorePreview.objects.create(
        snapshot=snapshot,
        created_by=operator,
        expires_at=timezone.now() + timedelta(minutes=5),
        live_source="cache",
        registry_fingerprint=registry_fingerprint([]),
    )
    done = RestorePreview.objects.create(
        snapshot=snapshot, created_by=operator, expires_at=timezone.now(), live_source="cache"
    )
    restore = Restore.objects.create(preview=done, snapshot=snapshot, created_by=operator)
    job = Job.objects.create(type=JobType.SNAPSHOT, created_by=operator, data={"title": "Before MD"})
    tag_group = TagGroup.objects.create(name="Area")
    tag = Tag.objects.create(group=tag_group, name="Injector")
    pv = PV.objects.create(setpoint_address="AUTH:MAG1:CURRENT")
    pv_set = PVSet.objects.create(name="Magnets", filters={"device": "MAG"})
    return {
        "operator": operator,
        "snapshot": snapshot,
        "preview": preview,
        "restore": restore,
        "job": job,
        "pv": pv,
        "tag_group": tag_group,
        "tag": tag,
        "pv_set": pv_set,
    }


def _user(user: str, world, make_user):
    if user == ANONYMOUS:
        return None
    if user == "operator":
        return world["operator"]
    return make_user(None if user == NO_ROLE else user)


def _params(method: str, name: str, world) -> dict:
    """A minimal valid query or body for the operation: its permission check is what is measured."""
    snapshot = world["snapshot"].pk
    return {
        ("POST", "snapshots-api:snapshot-list"): {"title": "Shift start", "mode": "cache"},
        ("PUT", "snapshots-api:snapshot-tags"): {"tags": []},
        ("POST", "snapshots-api:restore-preview-list"): {"snapshot": snapshot},
        ("GET", "snapshots-api:compare"): {"a": snapshot, "b": snapshot},
        ("GET", "snapshots-api:compare-columns"): {"a": snapshot, "b": [snapshot, snapshot]},
        ("GET", "snapshots-api:drift"): {"snapshot": snapshot},
        # No archiver here: both are a 400 once allowed (an archiver would be asked after the check).
        ("POST", "snapshots-api:compare-archive"): {"a": snapshot, "at": "2026-01-01T00:00:00Z"},
        ("GET", "pvs-api:pv-history"): {"from": "not a time"},
        ("POST", "pvs-api:pv-list"): {"setpoint_address": "AUTH:NEW:PV"},
        ("PUT", "pvs-api:pv-detail"): {"setpoint_address": "AUTH:MAG1:CURRENT", "description": "Main coil"},
        ("PATCH", "pvs-api:pv-detail"): {"description": "Main coil"},
        ("POST", "pvs-api:pv-bulk-create"): [{"setpoint_address": "AUTH:BULK:PV"}],
        ("PATCH", "pvs-api:pv-bulk-create"): [{"id": world["pv"].pk, "description": "Main coil"}],
        ("POST", "pvs-api:pv-bulk-delete"): {"ids": [world["pv"].pk]},
        ("POST", "pvs-api:pv-set-list"): {"name": "Chosen", "pvs": ["AUTH:MAG1:CURRENT"]},
        ("PUT", "pvs-api:pv-set-detail"): {"name": "Magnets", "pvs": ["AUTH:MAG1:CURRENT"]},
        ("PATCH", "pvs-api:pv-set-detail"): {"description": "Every magnet"},
        ("POST", "pvs-api:pv-set-members"): {"add": ["AUTH:MAG1:CURRENT"]},
        ("POST", "tags-api:tag-group-list"): {"name": "Subsystem"},
        ("PUT", "tags-api:tag-group-detail"): {"name": "Area", "description": "Where it is"},
        ("PATCH", "tags-api:tag-group-detail"): {"description": "Where it is"},
        ("POST", "tags-api:tag-list"): {"group": world["tag_group"].pk, "name": "Linac"},
        ("PUT", "tags-api:tag-detail"): {"group": world["tag_group"].pk, "name": "Injector"},
        ("PATCH", "tags-api:tag-detail"): {"description": "First section"},
    }.get((method, name), {})


def _send(client, method: str, url: str, params: dict):
    if method == "GET":
        return client.get(url, params)
    if url.endswith("/import/"):
        return client.post(url, params)  # multipart; without its file a 400 once allowed
    return client.generic(method, url, json.dumps(params), content_type="application/json")


def _outcome(response) -> str:
    status = response.status_code
    if status in (401, 403, 404):
        return str(status)
    if status == 302 and response["Location"].startswith(f"{resolve_url(settings.LOGIN_URL)}?next="):
        return "login"
    return "ok" if status < 300 or status == 400 else f"unexpected {status}"


@pytest.mark.django_db
@pytest.mark.parametrize("method, name, obj, user, expected", _cases(API + PUBLIC_API, named_by=2))
def test_api_operation(client, world, make_user, redis_db, method, name, obj, user, expected):
    account = _user(user, world, make_user)
    if account is not None:
        client.force_login(account)
    url = reverse(name, kwargs={"pk": world[obj].pk} if obj else {})
    response = _send(client, method, url, _params(method, name, world))
    assert _outcome(response) == expected, response.content[:300]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("route, user, expected", _cases(SOCKETS, named_by=1))
def test_websocket_route(client, world, make_user, redis_db, route, user, expected):
    account = _user(user, world, make_user)
    headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
    if account is not None:
        client.force_login(account)
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    path = "/" + route.replace("<int:job_id>", str(world["job"].pk))

    async def handshake() -> bool:
        communicator = WebsocketCommunicator(application, path, headers=headers)
        connected, _ = await communicator.connect()
        if connected:
            await communicator.disconnect()
        return connected

    assert async_to_sync(handshake)() is (expected == "ok")


def _api_operations(patterns=None, namespace="") -> dict[tuple[str, str], str]:
    """(method, URL name) -> pattern of every routed operation under /api/v1/ (HEAD and OPTIONS
    follow GET's permission and are left out)."""
    operations = {}
    for pattern in get_resolver("squirrel_site.api_urls").url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            operations |= _api_operations(pattern.url_patterns, inner)
            continue
        view = pattern.callback
        # A ViewSet route maps methods to actions; an APIView has a handler per method.
        methods = (
            view.actions
            if getattr(view, "actions", None)
            else [m for m in view.cls.http_method_names if hasattr(view.cls, m)]
        )
        for method in set(methods) - {"head", "options"}:
            operations[(method.upper(), f"{namespace}{pattern.name}")] = str(pattern.pattern)
    return operations


def test_every_api_operation_has_a_row():
    routed = _api_operations()
    listed = {(method, name) for method, name, *_ in API + PUBLIC_API}
    missing = [f"{method} {routed[method, name]} ({name})" for method, name in sorted(routed.keys() - listed)]
    assert not missing, f"Add these operations to the authorization matrix: {missing}"
    assert not listed - routed.keys(), f"Rows for operations that are no longer routed: {listed - routed.keys()}"


def test_every_websocket_route_has_a_row():
    routed = {str(pattern.pattern) for pattern in websocket_urlpatterns}
    listed = {route for route, _ in SOCKETS}
    assert routed == listed, f"Routed but not in the matrix: {routed - listed}; listed but gone: {listed - routed}"


def test_the_matrix_allows_nothing_to_anonymous_or_roleless_users():
    for row in API + SOCKETS:
        anonymous, no_role = row[-1].split()[:2]
        assert anonymous in ("401", "login") and no_role == "403", row
