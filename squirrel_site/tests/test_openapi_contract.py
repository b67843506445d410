"""The API against its own OpenAPI schema, with schemathesis: every operation the schema lists
(so new endpoints are covered as soon as they are routed), once as an administrator with a token
and once anonymously. Each answer must be no 5xx, a documented status, the documented content
type and a body that matches the documented schema; invalid data must be refused with a 4xx.

The schema is the one /api/v1/schema/ serves, made by the same generator: that URL needs a login,
and pytest collects the operations before any database exists (test_schema.py tests the URL).
Requests go to Django's WSGI handler in this process, inside the test's transaction: jobs are
created but their Celery messages (sent on commit) never leave, and the web process never talks
Channel Access (DESIGN.md), so no IOC and no worker is needed.
"""

import zlib

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import AcceptedNegativeData
from schemathesis.core.mutations import OperatorKind

from jobs.models import Job, JobType
from snapshots.models import GOLDEN_TAG, Restore, RestoreItem, RestoreItemStatus, RestoreStatus, SnapshotTag
from snapshots.restore import preview_restore
from snapshots.tests.conftest import Enum, live_values, make_pvs, make_snapshot  # noqa: F401 - fixtures
from tags.models import Tag, TagGroup

CONFIG = SchemathesisConfig.from_dict({
    "seed": 20261124,
    # Unknown query parameters are ignored, as HTTP APIs do (docs/api.md), not refused.
    "generation": {"deterministic": True, "allow-extra-parameters": False},
    # positive_data_acceptance expects 2xx for any schema-valid body, but a schema cannot know which
    # ids exist: {"snapshot": 7} is a valid preview request that rightly answers 400.
    "checks": {"positive_data_acceptance": {"enabled": False}},
})  # fmt: skip
schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True), config=CONFIG)
schema.app = WSGIHandler()

# Bounded so that both runs over every operation take about a minute; the same cases every run.
CONTRACT_SETTINGS = settings(
    max_examples=25, derandomize=True, database=None, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
)  # fmt: skip

# Generated ids that could name an existing object: (where, name, the kind of object; None: the
# operation's own, from its URL).
ID_PARAMETERS = (
    ("path_parameters", "id", None), ("query", "a", "snapshots"), ("query", "snapshot", "snapshots"),
    ("body", "snapshot", "snapshots"),
)  # fmt: skip
JSON_SCALARS = {"string", "integer", "number", "boolean"}


@schema.hook
def filter_failure(context, failure, case, response) -> bool:
    """Keep every failure but DRF's coercions between JSON scalars, which the API accepts
    (docs/api.md): a number given for text reads as its text (0 as "0"), numeric text for a
    number, 0 or 1 for a boolean. A list or an object where a scalar belongs is still a failure."""
    if not isinstance(failure, AcceptedNegativeData):
        return True
    mutations = getattr(case.meta.phase.data, "mutations", ())
    return not mutations or not all(
        mutation.operator == OperatorKind.CHANGE_TYPE
        and {str(mutation.original_value), str(mutation.new_value)} <= JSON_SCALARS
        for mutation in mutations
    )


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """Requests do not close the test's database connection (it holds the test's transaction);
    Django's test client unhooks the same handler."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def token(admin_user) -> str:
    from knox.models import AuthToken

    return AuthToken.objects.create(user=admin_user)[1]


@pytest.fixture
def machine(admin_user, make_pvs, make_snapshot, live_values):  # noqa: F811 - fixtures imported above
    """Something behind every kind of id: tagged PVs, a golden snapshot with a value of each kind,
    live values in Redis (so previews, undos and live comparisons are made from the cache), a
    preview, a finished restore with its items, and a job. Returns their ids by the URL segment of
    their kind."""
    group = TagGroup.objects.create(name="Area")
    tag = Tag.objects.create(group=group, name="Linac")
    pv_a, *_ = make_pvs("C:A", "C:B", "C:E", "C:S", "C:N", abs_tolerance=0.1, device="MAG")
    pv_a.tags.add(tag)
    values = {"C:A": 1.0, "C:B": [1.0, 2.0], "C:E": Enum(1), "C:S": "text", "C:N": None}
    snapshot = make_snapshot("Golden", values)
    snapshot.tags.add(SnapshotTag.objects.get(name=GOLDEN_TAG))
    live_values({"C:A": 1.5, "C:B": [1.0, 2.5], "C:E": Enum(2), "C:S": "other", "C:N": float("nan")})
    preview = preview_restore(snapshot, created_by=admin_user, cache_only=True)
    restore = Restore.objects.create(
        preview=preview, snapshot=snapshot, created_by=admin_user, status=RestoreStatus.SUCCEEDED,
        undo_snapshot=make_snapshot("Before the restore", values),
    )  # fmt: skip
    RestoreItem.objects.create(restore=restore, pv=pv_a, pv_name="C:A", value_type="float", target_num=1.0,
                               old_num=1.5, readback_num=1.0, status=RestoreItemStatus.VERIFIED)  # fmt: skip
    job = Job.objects.create(type=JobType.SNAPSHOT, created_by=admin_user, data={"title": "t"})
    return {
        "snapshots": snapshot.id, "restore-previews": preview.id, "restores": restore.id, "jobs": job.id,
        "pvs": pv_a.id, "tags": tag.id, "tag-groups": group.id,
    }  # fmt: skip


def use_existing_ids(case, ids: dict[str, int]) -> None:
    """Make half the generated ids name an existing object of their kind (random ones are nearly
    all 404s). Which half: a checksum of the generated value, so that every run sends the same
    requests; schemathesis re-checks whether the case is still valid or invalid data."""
    for attribute, name, kind in ID_PARAMETERS:
        values = getattr(case, attribute)
        kind = kind or case.path.split("/")[3]  # /api/v1/<kind>/...
        if isinstance(values, dict) and name in values and kind in ids and zlib.crc32(repr(values[name]).encode()) % 2:
            values[name] = ids[kind]


@schema.parametrize()
@CONTRACT_SETTINGS
def test_an_administrator_gets_documented_answers(case, token, machine):
    use_existing_ids(case, machine)
    case.call_and_validate(headers={"Authorization": f"Token {token}"})


@schema.parametrize()
@CONTRACT_SETTINGS
def test_anonymous_requests_get_documented_answers(case, db):
    case.call_and_validate()
