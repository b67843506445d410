"""The API against its own OpenAPI schema, with schemathesis: every operation the schema lists
(so new endpoints are covered as soon as they are routed), once as an administrator with a token
and once anonymously. Each answer must be no 5xx, a documented status, the documented content
type and a body that matches the documented schema; invalid data must be refused with a 4xx.

The schema is the one /api/v1/schema/ serves, made by the same generator: that URL needs a login,
and pytest collects the operations before any database exists (test_schema.py tests the URL).
Requests go to Django's WSGI handler in this process, inside the test's transaction: jobs are
created but their Celery messages (sent on commit) never leave, and the web process never talks
Channel Access (README, "Processes"), so no IOC and no worker is needed.
"""

import time
import zlib

import jsonschema_rs
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
from schemathesis.core.parameters import ParameterLocation

from jobs.models import Job, JobType
from monitor import live
from pvs.models import PVSet
from pvs.pv_sets import save_pv_set
from snapshots.models import GOLDEN_TAG, Restore, RestoreItem, RestoreItemStatus, RestoreStatus, SnapshotTag
from snapshots.restore.preview import preview_restore
from squirrel_site.audit import AuditVia
from squirrel_site.testing.archiver import PORT_OFFSET, SimArchiver
from squirrel_site.testing.services import Ports
from squirrel_site.testing.snapshots import Enum
from squirrel_site.testing.workers import port_base
from tags.models import Tag, TagGroup

CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": 20261124,
        # Unknown query parameters are ignored, as HTTP APIs do (docs/api.md), not refused.
        "generation": {"deterministic": True, "allow-extra-parameters": False},
        # positive_data_acceptance expects 2xx for any schema-valid body, but a schema cannot know which
        # ids exist: {"snapshot": 7} is a valid preview request that rightly answers 400.
        "checks": {"positive_data_acceptance": {"enabled": False}},
    }
)
# The fuzz takes about a minute: the fast subset (-m "not slow ...") leaves it out.
pytestmark = pytest.mark.slow

schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True), config=CONFIG)
schema.app = WSGIHandler()

# Bounded so that both runs over every operation take about a minute; the same cases every run.
CONTRACT_SETTINGS = settings(
    max_examples=25,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
)

# Generated ids that could name an existing object: (where, name, the kind of object; None: the
# operation's own, from its URL). In a body, the name is looked for in every object, however deep
# (bulk items, a selection). A list (tags, ids) becomes the one existing id.
ID_PARAMETERS = (
    ("path_parameters", "id", None),
    ("query", "a", "snapshots"),
    ("query", "snapshot", "snapshots"),
    ("query", "tag", "tags"),
    ("query", "tag_group", "tag-groups"),
    ("query", "pv_set", "pv-sets"),
    ("query", "group", "tag-groups"),
    ("body", "snapshot", "snapshots"),
    ("body", "tag", "tags"),
    ("body", "tag_group", "tag-groups"),
    ("body", "pv_set", "pv-sets"),
    ("body", "tags", "tags"),
    ("body", "group", "tag-groups"),
    ("body", "ids", "pvs"),
    ("body", "id", "pvs"),
)
JSON_SCALARS = {"string", "integer", "number", "boolean"}
# The largest id a bigint primary key holds (squirrel_site.limits.id_field).
MAX_ID = 2**63 - 1


@schema.hook
def filter_failure(context, failure, case, response) -> bool:
    """Keep every failure but DRF's coercions between JSON scalars, which the API accepts
    (docs/api.md): a number given for text reads as its text (0 as "0"), numeric text for a
    number, 0 or 1 for a boolean. A list or an object where a scalar belongs is still a failure."""
    if not isinstance(failure, AcceptedNegativeData):
        return True
    return not (_only_scalar_type_mutations(case) or _body_breaks_only_scalar_types(case))


def _only_scalar_type_mutations(case) -> bool:
    """Whether the fuzzer made the case invalid by changing scalars to other scalar types only."""
    mutations = getattr(case.meta.phase.data, "mutations", ())
    return bool(mutations) and all(
        mutation.operator == OperatorKind.CHANGE_TYPE
        and {str(mutation.original_value), str(mutation.new_value)} <= JSON_SCALARS
        for mutation in mutations
    )


def _body_breaks_only_scalar_types(case) -> bool:
    """Whether only the body is invalid, and only by scalars of the wrong scalar type. The coverage
    phase does not say how it broke a body ("Incorrect type" of a string gives 0), so the body is
    checked against its schema."""
    negative = {location for location, component in case.meta.components.items() if component.mode.is_negative}
    if negative != {ParameterLocation.BODY}:
        return False
    [body] = [alternative for alternative in case.operation.body if alternative.media_type == case.media_type]
    errors = list(body.get_validator().iter_errors(case.body))
    return bool(errors) and all(
        isinstance(error.kind, jsonschema_rs.ValidationErrorKind.Type)
        and _json_type(error.instance) in JSON_SCALARS
        and set(error.kind.types) - {"null"} <= JSON_SCALARS
        for error in errors
    )


def _json_type(value) -> str:
    kinds = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"))
    return next((name for kind, name in kinds if isinstance(value, kind)), "other")


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
def healthy(redis_db):
    """The monitor's and a worker's heartbeats: the health probe answers 200 even with ?strict=1
    (its 503 is for a degraded system, which test_api_health.py covers)."""
    live.write_heartbeat(redis_db, live.Shard(0, 1), {"synced": True})
    live.write_worker_heartbeat(
        redis_db,
        "celery@contract/1",
        {"name": "celery@contract", "pid": 1, "concurrency": 1, "active": 0, "started": time.time()},
        ttl=600,
    )


@pytest.fixture
def machine(admin_user, make_pvs, make_snapshot, live_values, healthy):
    """Something behind every kind of id: tagged PVs, a golden snapshot with a value of each kind,
    live values in Redis (so previews, undos and live comparisons are made from the cache), a
    preview, a finished restore with its items, and a job. Returns their ids by the URL segment of
    their kind; the PV is the one everything refers to (tags, snapshot values, preview and restore
    items), and the tag group has a second tag, on another PV, and a neighbour group."""
    group = TagGroup.objects.create(name="Area", description="Where it is")
    tag = Tag.objects.create(group=group, name="Linac")
    undulator = Tag.objects.create(group=group, name="Undulator")
    Tag.objects.create(group=TagGroup.objects.create(name="System"), name="Magnets")
    pv_a, pv_b, *_ = make_pvs("C:A", "C:B", "C:E", "C:S", "C:N", abs_tolerance=0.1, device="MAG")
    pv_a.tags.add(tag, undulator)
    pv_b.tags.add(undulator)
    values = {"C:A": 1.0, "C:B": [1.0, 2.0], "C:E": Enum(1), "C:S": "text", "C:N": None}
    snapshot = make_snapshot("Golden", values)
    snapshot.tags.add(SnapshotTag.objects.get(name=GOLDEN_TAG))
    live_values({"C:A": 1.5, "C:B": [1.0, 2.5], "C:E": Enum(2), "C:S": "other", "C:N": float("nan")})
    preview = preview_restore(snapshot, created_by=admin_user, cache_only=True)
    restore = Restore.objects.create(
        preview=preview,
        snapshot=snapshot,
        created_by=admin_user,
        status=RestoreStatus.SUCCEEDED,
        undo_snapshot=make_snapshot("Before the restore", values),
    )
    RestoreItem.objects.create(
        restore=restore,
        pv=pv_a,
        pv_name="C:A",
        value_type="float",
        target_num=1.0,
        old_num=1.5,
        readback_num=1.0,
        status=RestoreItemStatus.VERIFIED,
    )
    job = Job.objects.create(type=JobType.SNAPSHOT, created_by=admin_user, data={"title": "t"})
    pv_set = save_pv_set(
        PVSet(name="Linac", filters={"tag": [tag.id]}), member_ids=[pv_b.id], actor=None, via=AuditVia.COMMAND
    )
    return {
        "snapshots": snapshot.id,
        "restore-previews": preview.id,
        "restores": restore.id,
        "jobs": job.id,
        "pvs": pv_a.id,
        "tags": tag.id,
        "tag-groups": group.id,
        "pv-sets": pv_set.id,
    }


def use_existing_ids(case, ids: dict[str, int]) -> None:
    """Make half the generated ids name an existing object of their kind (random ones are nearly
    all 404s or 400s). Which half: a checksum of the generated value, so that every run sends the
    same requests. Schemathesis re-checks whether a query or path is still invalid data, not a
    body: there, only integers are replaced (a snapshot's `tags` are names), and in an invalid body
    only single ones the schema allows (0, 2**63 or a list's length may be what makes it invalid)."""
    negative_body = case.meta.is_negative_at(ParameterLocation.BODY)
    for attribute, name, kind in ID_PARAMETERS:
        kind = kind or case.path.split("/")[3]  # /api/v1/<kind>/...
        in_body = attribute == "body"
        if kind not in ids:
            continue
        for values in _objects(getattr(case, attribute), deep=in_body):
            value = values.get(name)
            replaceable = name in values and (not in_body or _are_ids(value, strict=negative_body))
            if replaceable and zlib.crc32(repr(value).encode()) % 2:
                values[name] = [ids[kind]] if isinstance(value, list) else ids[kind]


def _are_ids(value, strict: bool) -> bool:
    """Whether `value` is an integer or a list of them; with `strict`, one integer an id may be."""
    if isinstance(value, list):
        return not strict and bool(value) and all(_are_ids(item, strict) for item in value)
    return isinstance(value, int) and not isinstance(value, bool) and (not strict or 1 <= value <= MAX_ID)


def _objects(data, deep: bool):
    """The JSON objects of a request part: itself, and when `deep` every object inside it."""
    if isinstance(data, dict):
        yield data
    if deep and isinstance(data, (dict, list)):
        for value in data.values() if isinstance(data, dict) else data:
            yield from _objects(value, deep)


@pytest.fixture(scope="module")
def archiver(tmp_path_factory):
    """The simulated archiver (run_sim_archiver), recording only C:A, which no IOC serves: a PV's
    history answers what an archiver that has no sample of it says (404), and bad windows (400),
    rather than the 503 of no archiver at all, which is for a system without one."""
    archiver = SimArchiver(tmp_path_factory.mktemp("archiver"), ["C:A"], Ports(port_base() + PORT_OFFSET).take())
    archiver.start()
    yield archiver
    archiver.stop()


@schema.parametrize()
@CONTRACT_SETTINGS
def test_an_administrator_gets_documented_answers(case, token, machine, archiver, request):
    request.getfixturevalue("settings").ARCHIVERS = [("sim", archiver.url)]  # pytest-django's, not hypothesis's
    use_existing_ids(case, machine)
    case.call_and_validate(headers={"Authorization": f"Token {token}"})


@schema.parametrize()
@CONTRACT_SETTINGS
def test_anonymous_requests_get_documented_answers(case, db, healthy):
    case.call_and_validate()
