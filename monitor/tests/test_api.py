"""GET /api/v1/live/: registry PVs with their live values from Redis."""

import math

import pytest
from django.urls import reverse

from monitor import live
from monitor.live import LiveMeta
from pvs.models import PV
from squirrel_site.epics_values import Value
from tags.models import Tag, TagGroup

URL = "/api/v1/live/"
NOW = 1_700_000_000.0

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(client, admin_user):
    client.force_login(admin_user)
    return client


def make_value(address, kind="float", value=1.5, **overrides) -> Value:
    fields = dict(status=0, severity=0, timestamp=NOW, received=NOW, connected=True)
    fields.update(overrides)
    return Value(address, kind, value, **fields)


def make_meta(**overrides) -> LiveMeta:
    fields = dict(
        units="",
        precision=None,
        enum_labels=None,
        lower_limit=None,
        upper_limit=None,
        host="ioc:5064",
        kind="float",
        count=1,
        read_access=True,
        write_access=True,
    )
    fields.update(overrides)
    return LiveMeta(**fields)


def make_pvs(count, prefix="SIM:PV", **fields) -> list[PV]:
    return PV.objects.bulk_create(
        PV(setpoint_address=f"{prefix}{i:04d}:SET", readback_address=f"{prefix}{i:04d}:RBV", **fields)
        for i in range(count)
    )


def addresses(response) -> list[str]:
    return [row["setpoint_address"] for row in response.json()["results"]]


def test_live_url_is_routed():
    assert reverse("monitor-api:live-list") == URL


def test_anonymous_is_refused(client, redis_db):
    make_pvs(1)

    assert client.get(URL).status_code == 401


def test_scripts_authenticate_with_a_token(client, viewer, redis_db):
    from knox.models import AuthToken

    make_pvs(1)
    _, token = AuthToken.objects.create(user=viewer)
    response = client.get(URL, HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 200 and len(response.json()["results"]) == 1
    assert client.get(URL, HTTP_AUTHORIZATION=f"Token {token[:-1]}x").status_code == 401


def test_written_values_appear_with_units_and_precision(api, writer):
    (pv,) = make_pvs(1)
    writer.write(
        {
            pv.setpoint_address: make_value(pv.setpoint_address, value=2.5, severity=1, status=3),
            pv.readback_address: make_value(pv.readback_address, value=2.49, connected=False),
        },
        {pv.setpoint_address: make_meta(units="mA", precision=2)},
    )

    (row,) = api.get(URL).json()["results"]

    assert row["id"] == pv.id
    assert row["readback_address"] == pv.readback_address
    setpoint, readback = row["setpoint"], row["readback"]
    assert (setpoint["value"], setpoint["kind"]) == (2.5, "float")
    assert (setpoint["status"], setpoint["severity"]) == (3, 1)
    assert (setpoint["units"], setpoint["precision"], setpoint["connected"]) == ("mA", 2, True)
    assert setpoint["timestamp"] == "2023-11-14T22:13:20+00:00"
    assert setpoint["age"] > 0
    assert (readback["value"], readback["connected"], readback["units"], readback["precision"]) == (
        2.49,
        False,
        "",
        None,
    )


def test_unknown_addresses_are_null(api, writer):
    make_pvs(1)

    (row,) = api.get(URL).json()["results"]

    assert row["setpoint"] is None and row["readback"] is None


def test_pv_without_readback_has_null_readback(api, writer):
    pv = PV.objects.create(setpoint_address="SIM:ALONE")
    writer.write({"SIM:ALONE": make_value("SIM:ALONE")})

    (row,) = api.get(URL).json()["results"]

    assert row["readback_address"] == "" and row["readback"] is None
    assert row["setpoint"]["value"] == 1.5 and row["id"] == pv.id


def test_enum_value_carries_its_label(api, writer):
    PV.objects.create(setpoint_address="SIM:MODE")
    writer.write(
        {"SIM:MODE": make_value("SIM:MODE", "enum", 1)},
        {"SIM:MODE": make_meta(kind="enum", enum_labels=["Off", "On"])},
    )

    setpoint = api.get(URL).json()["results"][0]["setpoint"]

    assert (setpoint["value"], setpoint["enum_label"]) == (1, "On")


def test_enum_out_of_range_has_no_label(api, writer):
    PV.objects.create(setpoint_address="SIM:MODE")
    writer.write(
        {"SIM:MODE": make_value("SIM:MODE", "enum", 5)},
        {"SIM:MODE": make_meta(kind="enum", enum_labels=["Off"])},
    )

    assert api.get(URL).json()["results"][0]["setpoint"]["enum_label"] is None


def test_never_processed_record_has_null_timestamp(api, writer):
    PV.objects.create(setpoint_address="SIM:NEW")
    writer.write({"SIM:NEW": make_value("SIM:NEW", timestamp=0.0)})

    assert api.get(URL).json()["results"][0]["setpoint"]["timestamp"] is None


def test_non_finite_floats_are_spelled_as_strings(api, writer):
    PV.objects.create(setpoint_address="SIM:NAN", readback_address="SIM:ARR")
    writer.write(
        {
            "SIM:NAN": make_value("SIM:NAN", value=math.nan),
            "SIM:ARR": make_value("SIM:ARR", "float_array", [1.0, math.inf, -math.inf]),
        }
    )

    (row,) = api.get(URL).json()["results"]

    assert row["setpoint"]["value"] == "NaN"
    assert row["readback"]["value"] == [1.0, "Infinity", "-Infinity"]


def test_pages_follow_the_cursor_in_id_order(api, writer):
    pvs = make_pvs(5)

    first = api.get(URL, {"page_size": 2}).json()
    second = api.get(first["next"]).json()

    assert [r["id"] for r in first["results"] + second["results"]] == [pv.id for pv in pvs[:4]]
    assert first["previous"] is None


def test_page_size_defaults_to_500(api, writer):
    make_pvs(501)

    page = api.get(URL).json()

    assert len(page["results"]) == 500 and page["next"]


def test_page_size_is_capped_at_5000(api, writer):
    make_pvs(5001)

    page = api.get(URL, {"page_size": 10_000}).json()

    assert len(page["results"]) == 5000


def test_list_reads_one_page_of_pvs_in_one_query(api, writer, django_assert_max_num_queries):
    pvs = make_pvs(50)
    writer.write({pv.setpoint_address: make_value(pv.setpoint_address) for pv in pvs})

    with django_assert_max_num_queries(3):  # session, user, one page of PVs
        response = api.get(URL)

    assert len(response.json()["results"]) == 50


def test_page_reads_redis_in_one_round_trip(api, writer, monkeypatch):
    make_pvs(20)
    calls = []
    read = live.read_values_and_metadata

    def counting_read(addresses, client=None):
        calls.append(addresses)
        return read(addresses, client)

    monkeypatch.setattr(live, "read_values_and_metadata", counting_read)

    api.get(URL)

    assert len(calls) == 1 and len(calls[0]) == 40


def test_filter_by_repeated_pv_addresses(api, writer):
    make_pvs(5)

    response = api.get(URL, {"pv": ["SIM:PV0001:SET", "SIM:PV0003:SET", "SIM:OTHER"]})

    assert addresses(response) == ["SIM:PV0001:SET", "SIM:PV0003:SET"]


def test_invalid_pv_address_is_a_field_error(api, writer):
    response = api.get(URL, {"pv": "SIM: BAD"})

    assert response.status_code == 400
    assert "whitespace" in response.json()["error"]["fields"]["pv"][0]


def test_an_address_with_a_percent_sign_is_a_field_error(api, writer):
    # django-filter %-formats error messages: the address must not be part of the format.
    response = api.get(URL, {"pv": "SIM:%s%d"})

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["pv"] == [
        "'SIM:%s%d': The record name contains characters Channel Access does not allow: '%'."
    ]


def test_filter_by_tag_requires_every_tag(api, writer):
    area, kind = TagGroup.objects.create(name="Area"), TagGroup.objects.create(name="Kind")
    li21, magnet = Tag.objects.create(group=area, name="LI21"), Tag.objects.create(group=kind, name="Magnet")
    a, b, _ = make_pvs(3)
    a.tags.set([li21, magnet])
    b.tags.set([li21])

    assert addresses(api.get(URL, {"tag": li21.id})) == [a.setpoint_address, b.setpoint_address]
    assert addresses(api.get(URL, {"tag": [li21.id, magnet.id]})) == [a.setpoint_address]


def test_filter_by_tag_group_lists_each_pv_once(api, writer):
    area = TagGroup.objects.create(name="Area")
    li21, li22 = Tag.objects.create(group=area, name="LI21"), Tag.objects.create(group=area, name="LI22")
    a, b, _ = make_pvs(3)
    a.tags.set([li21, li22])
    b.tags.set([li22])

    assert addresses(api.get(URL, {"tag_group": area.id})) == [a.setpoint_address, b.setpoint_address]


@pytest.mark.parametrize(
    "param, value", [("tag", "abc"), ("tag", "999999"), ("tag_group", "x"), ("tag_group", "999999")]
)
def test_unknown_tag_or_group_is_a_field_error(api, writer, param, value):
    response = api.get(URL, {param: value})

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [param]


def test_filter_by_device_prefix(api, writer):
    PV.objects.create(setpoint_address="QUAD:LI21:201:BDES", device="QUAD:LI21:201")
    PV.objects.create(setpoint_address="QUAD:LI22:201:BDES", device="QUAD:LI22:201")

    assert addresses(api.get(URL, {"device": "quad:li21"})) == ["QUAD:LI21:201:BDES"]


def test_search_matches_addresses_and_description(api, writer):
    PV.objects.create(setpoint_address="SIM:A", description="Gun solenoid current")
    PV.objects.create(setpoint_address="SIM:B", readback_address="SIM:SOLENOID:RBV")
    PV.objects.create(setpoint_address="SIM:C")

    assert addresses(api.get(URL, {"search": "solenoid"})) == ["SIM:A", "SIM:B"]


def test_redis_down_is_service_unavailable(api, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    make_pvs(1)

    assert api.get(URL).status_code == 503
