"""A PV's archived history, GET /api/v1/pvs/<id>/history/: against the simulated archiver process
recording the simulated IOC (its samples, their kinds and units, an address it does not archive,
the archiver killed), and the bounds of the request (hostile windows and parameters, no archiver,
permissions) before any archiver is asked."""

from datetime import UTC, datetime, timedelta

import pytest

from pvs import sim
from pvs.api import history
from pvs.models import PV
from squirrel_site.testing import eventually

ARCHIVER_NAME = "sim"  # as squirrel_site.testing.archiver names it
NOW = datetime(2026, 12, 8, 1, 0, tzinfo=UTC)


def url(pv) -> str:
    return f"/api/v1/pvs/{pv.pk}/history/"


def error_of(response) -> dict:
    return response.json()["error"]


@pytest.fixture
def quad(db):
    return PV.objects.create(setpoint_address="LI:Q1:SP", readback_address="LI:Q1:RB", device="Q1")


@pytest.fixture
def as_viewer(client, viewer):
    client.force_login(viewer)
    return client


# The request's bounds: answered before any archiver is asked (none is configured here).


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"from": "yesterday"}, "from", "Datetime has wrong format"),
        ({"to": "2026-13-01T00:00:00Z"}, "to", "Datetime has wrong format"),
        ({"from": "=cmd|' /C calc'!A0"}, "from", "Datetime has wrong format"),
        ({"from": "2026-12-08T01:00:00Z", "to": "2026-12-08T00:00:00Z"}, "to", "must be after"),
        ({"from": "2026-12-08T01:00:00Z", "to": "2026-12-08T01:00:00Z"}, "to", "must be after"),
        ({"from": "2026-10-01T00:00:00Z", "to": "2026-12-08T00:00:00Z"}, "to", "longer than 31 days"),
        ({"from": "0001-01-01T00:00:00Z"}, "from", "from 1970 to 8999"),
        ({"to": "9999-12-31T23:59:59Z"}, "to", "from 1970 to 8999"),
        ({"from": "1" * 5000}, "from", ""),  # read as a day of the year 1111 or refused: a 400 either way
        ({"address": "config"}, "address", "is not a valid choice"),
        ({"kind": "bogus"}, "kind", "is not a valid choice"),
    ],
)
def test_a_bad_window_or_parameter_is_a_400_naming_it(as_viewer, quad, settings, query, field, message):
    settings.ARCHIVERS = [("nowhere", "http://127.0.0.1:9")]  # never asked: the query is refused first
    response = as_viewer.get(url(quad), query)
    assert response.status_code == 400, response.content
    assert message in " ".join(error_of(response)["fields"][field])


def test_a_nul_in_the_query_is_a_400(as_viewer, quad):
    response = as_viewer.get(url(quad) + "?from=2026-12-08T00:00:00Z%00")
    assert response.status_code == 400


def test_the_window_defaults_to_an_hour_from_either_end():
    def window(**query):
        parsed = history.HistoryQuerySerializer(data=query)
        assert parsed.is_valid(), parsed.errors
        return parsed.validated_data["from"], parsed.validated_data["to"]

    start, end = window()
    assert end - start == timedelta(hours=1) and abs((end - datetime.now(UTC)).total_seconds()) < 60
    assert window(**{"from": NOW.isoformat()}) == (NOW, NOW + timedelta(hours=1))
    assert window(to=NOW.isoformat()) == (NOW - timedelta(hours=1), NOW)
    offsets = {"from": "2026-12-08T02:00:00+01:00", "to": "2026-12-08T01:30:00Z"}
    assert window(**offsets) == (NOW, NOW.replace(minute=30))


def test_without_an_archiver_it_is_a_503_that_says_so(as_viewer, quad, settings):
    settings.ARCHIVERS = []
    response = as_viewer.get(url(quad))
    assert response.status_code == 503
    assert "No archiver is configured (SQUIRREL_ARCHIVER_URL)" in error_of(response)["message"]
    assert response["Retry-After"]


def test_an_unknown_pv_is_a_404(as_viewer, db):
    assert as_viewer.get("/api/v1/pvs/987654/history/").status_code == 404


def test_it_needs_credentials_and_view_pv(client, quad, make_user):
    assert client.get(url(quad)).status_code in (401, 403)
    client.force_login(make_user(None, "nobody"))
    assert client.get(url(quad)).status_code == 403


def test_the_schema_documents_it(as_viewer, db):
    schema = as_viewer.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = schema["paths"]["/api/v1/pvs/{id}/history/"]["get"]
    assert {p["name"] for p in operation["parameters"]} >= {"id", "from", "to", "address", "kind"}
    assert {"200", "400", "404", "503"} <= set(operation["responses"])


# Against the simulated archiver recording the simulated IOC.


def first_of(ioc, kind: str) -> PV:
    return PV.objects.get(setpoint_address=ioc.of_kind(kind)[0].setpoint)


def archived(client, pv, ready=lambda found: True, **query) -> dict:
    """The history of `pv` once the archiver has recorded it (its first value seeds the last hour)
    and `ready(answer)` (the channel's units and precision come a moment after its first value)."""

    def answer():
        response = client.get(url(pv), query)
        assert response.status_code == 200, response.content
        return response.json() if ready(response.json()) else None

    return eventually(answer, 30, what=f"the history of {pv.setpoint_address}")


@pytest.mark.ioc
def test_a_float_pvs_history_from_the_archiver(client, admin_user, sim_archiver, sim_ioc_registry):
    client.force_login(admin_user)
    source = sim_ioc_registry.of_kind(sim.CHANGING)[0]
    pv = PV.objects.get(setpoint_address=source.setpoint)
    start = datetime.now(UTC) - timedelta(minutes=50)
    found = archived(client, pv, ready=lambda found: found["units"], **{"from": start.isoformat()})
    assert found["pv"] == pv.pk and found["address"] == source.setpoint and found["archiver"] == ARCHIVER_NAME
    assert found["kind"] == "float" and found["units"] == source.egu and found["precision"] == source.prec
    samples = found["samples"]
    times = [sample["timestamp"] for sample in samples]
    assert len(samples) >= 2 and times == sorted(times)
    # The archiver's last sample before `from` comes too; the rest are inside the window.
    assert all(time >= start.timestamp() for time in times[1:]) and times[-1] <= datetime.now(UTC).timestamp() + 1
    assert all(isinstance(sample["value"], float) and sample["severity"] == 0 for sample in samples)


@pytest.mark.ioc
def test_an_enum_with_its_kind_and_a_readback(client, admin_user, sim_archiver, sim_ioc_registry):
    client.force_login(admin_user)
    enum = first_of(sim_ioc_registry, sim.ENUM)
    found = archived(client, enum, kind="enum")
    assert found["kind"] == "enum" and all(isinstance(sample["value"], int) for sample in found["samples"])
    pair = first_of(sim_ioc_registry, sim.PAIR)
    readback = archived(client, pair, address="readback")
    assert readback["address"] == pair.readback_address and readback["samples"]


@pytest.mark.ioc
def test_an_address_the_archiver_does_not_archive_is_a_404_with_its_reason(
    client, admin_user, sim_archiver, sim_ioc_registry
):
    client.force_login(admin_user)
    unarchived = PV.objects.create(setpoint_address="SIM:NOT:ARCHIVED")  # in the registry, not archived
    response = client.get(url(unarchived))
    assert response.status_code == 404
    message = error_of(response)["message"]
    assert f"{unarchived.setpoint_address} is not archived" in message and ARCHIVER_NAME in message
    no_readback = PV.objects.filter(readback_address="").first()
    response = client.get(url(no_readback), {"address": "readback"})
    assert response.status_code == 404 and "no readback" in error_of(response)["message"]


@pytest.mark.ioc
def test_more_samples_than_an_answer_holds_is_a_400(client, admin_user, sim_archiver, sim_ioc_registry, monkeypatch):
    client.force_login(admin_user)
    pv = first_of(sim_ioc_registry, sim.CHANGING)
    count = len(archived(client, pv)["samples"])
    monkeypatch.setattr(history, "HISTORY_MAX_SAMPLES", count - 1)
    response = client.get(url(pv))
    assert response.status_code == 400
    assert "choose a shorter window" in error_of(response)["fields"]["from"][0]


@pytest.mark.ioc
def test_an_archiver_killed_is_a_503(client, admin_user, sim_archiver, sim_ioc_registry):
    client.force_login(admin_user)
    pv = first_of(sim_ioc_registry, sim.CHANGING)
    archived(client, pv)
    sim_archiver.kill()
    response = client.get(url(pv))
    assert response.status_code == 503 and response["Retry-After"]
    assert "The archiver did not answer" in error_of(response)["message"]
    assert ARCHIVER_NAME in error_of(response)["message"]
