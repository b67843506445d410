"""GET /api/v1/compare/ and /api/v1/drift/: payloads, pages, field-level 400s, 503 without Redis."""

import pytest
import redis

from monitor import live
from pvs.models import PV
from snapshots.models import SnapshotTag
from squirrel_site.testing.snapshots import Enum
from tags.models import Tag, TagGroup

pytestmark = pytest.mark.django_db

NAN = float("nan")


@pytest.fixture
def pair(make_snapshot, make_pvs):
    make_pvs("P:A", "P:B", "P:C", "P:D", "P:E", abs_tolerance=0.1, device="MAG")
    a = make_snapshot("A", {"P:A": 1.0, "P:B": 2.0, "P:C": NAN, "P:D": Enum(1), "P:E": [1.0, 2.0]})
    b = make_snapshot("B", {"P:A": 1.05, "P:B": 3.0, "P:C": 1.0, "P:D": Enum(2), "P:E": [1.0, 2.5]})
    return a, b


def get(client, path="/api/v1/compare/", **params):
    return client.get(path, params)


def test_compare_needs_a_login(client, pair):
    a, b = pair
    assert get(client, a=a.id, b=b.id).status_code == 401
    assert get(client, "/api/v1/drift/", snapshot=a.id).status_code == 401


def test_compare_returns_typed_rows_counts_and_the_snapshots(client, signed_in, pair):
    a, b = pair
    body = get(client, a=a.id, b=b.id).json()
    assert (body["a"]["id"], body["b"]["id"], body["count"], body["next"], body["previous"]) == (
        a.id,
        b.id,
        5,
        None,
        None,
    )
    assert body["counts"]["out_of_tolerance"] == 4 and body["counts"]["within"] == 1
    rows = {row["pv_name"]: row for row in body["results"]}
    assert rows["P:A"]["status"] == "within" and rows["P:A"]["delta"] == pytest.approx(0.05)
    assert rows["P:C"]["a"]["value"] == "NaN" and rows["P:C"]["delta"] == "NaN"  # strict JSON
    assert (rows["P:D"]["a"]["display"], rows["P:D"]["b"]["display"], rows["P:D"]["b"]["value"]) == ("On", "Fault", 2)
    assert rows["P:E"]["delta"] == [0.0, 0.5] and rows["P:E"]["kind"] == "float_array"
    assert rows["P:A"]["device"] == "MAG" and rows["P:A"]["abs_tolerance"] == 0.1


def test_compare_pages_link_to_each_other(client, signed_in, pair):
    a, b = pair
    first = get(client, a=a.id, b=b.id, page_size=2, sort="-delta").json()
    assert [row["pv_name"] for row in first["results"]] == ["P:C", "P:B"] and first["previous"] is None
    second = client.get(first["next"]).json()
    assert [row["pv_name"] for row in second["results"]] == ["P:E", "P:A"]
    third = client.get(second["next"]).json()
    assert [row["pv_name"] for row in third["results"]] == ["P:D"] and third["next"] is None
    assert client.get(third["previous"]).json()["results"] == second["results"]
    assert client.get(second["previous"]).json()["results"] == first["results"]


def test_compare_filters_and_tolerance_overrides(client, signed_in, pair):
    a, b = pair
    group = TagGroup.objects.create(name="Area")
    tag = Tag.objects.create(group=group, name="Linac")
    PV.objects.get(setpoint_address="P:B").tags.add(tag)
    assert [r["pv_name"] for r in get(client, a=a.id, b=b.id, tag=tag.id).json()["results"]] == ["P:B"]
    assert get(client, a=a.id, b=b.id, differences_only="true").json()["count"] == 4
    assert get(client, a=a.id, b=b.id, abs_tol="0.5", differences_only="true").json()["count"] == 3
    assert get(client, a=a.id, b=b.id, status=["within", "equal"]).json()["count"] == 1
    assert get(client, a=a.id, b=b.id, name="p:d").json()["results"][0]["pv_name"] == "P:D"


def test_compare_against_live_values(client, signed_in, pair, live_values):
    a, _ = pair
    live_values({"P:A": 1.0, "P:B": 2.0, "P:C": NAN, "P:D": Enum(1), "P:E": [1.0, 2.0]})
    body = get(client, a=a.id, b="live").json()
    assert body["b"] == "live" and body["counts"]["equal"] == 5
    assert body["results"][0]["b"]["address"] == "P:A"
    without_counts = get(client, a=a.id, counts="false", page_size=2).json()  # b defaults to live
    assert without_counts["counts"] is None and without_counts["count"] == 5 and without_counts["next"]


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"a": ""}, "a", "This field is required."),
        ({"a": "999"}, "a", "Snapshot 999 does not exist."),
        ({"a": "first"}, "a", "Enter a snapshot id."),
        ({"b": "999"}, "b", "Snapshot 999 does not exist."),
        ({"b": "yesterday"}, "b", 'Enter a snapshot id or "live".'),
        ({"abs_tol": "abc"}, "abs_tol", "Enter a number."),
        ({"abs_tol": "-1"}, "abs_tol", "Ensure this value is greater than or equal to 0."),
        ({"rel_tol": "nan"}, "rel_tol", "Enter a number."),
        ({"rel_tol": "inf"}, "rel_tol", "Enter a number."),
        ({"differences_only": "null"}, "differences_only", "Enter true or false."),
        ({"sort": "colour"}, "sort", "Select a valid choice. colour is not one of the available choices."),
        ({"status": "odd"}, "status", "Select a valid choice. odd is not one of the available choices."),
        ({"severity": "9"}, "severity", "Select a valid choice. 9 is not one of the available choices."),
        ({"severity": "0"}, "severity", "Select a valid choice. 0 is not one of the available choices."),
        ({"page": "0"}, "page", "Ensure this value is greater than or equal to 1."),
        ({"page_size": "5000"}, "page_size", "Ensure this value is less than or equal to 1000."),
        ({"tag": "999"}, "tag", "Select a valid choice. 999 is not one of the available choices."),
        ({"pv": "BAD NAME"}, "pv", None),
    ],
)
def test_bad_parameters_are_400_with_a_message_per_field(client, signed_in, pair, params, field, message):
    a, _ = pair
    response = get(client, **{"a": a.id, **params})
    assert response.status_code == 400
    errors = response.json()["error"]["fields"]
    assert list(errors) == [field]
    assert message is None or errors[field] == [message]


def test_live_comparison_without_redis_is_503(client, signed_in, pair, monkeypatch):
    a, _ = pair

    def unreachable(addresses, client=None):
        raise redis.ConnectionError("Connection refused")

    monkeypatch.setattr(live, "read_values", unreachable)
    response = get(client, a=a.id, b="live")
    assert response.status_code == 503 and "Redis" in response.json()["error"]["message"]


def test_a_compare_page_costs_a_fixed_number_of_queries(client, signed_in, pair, django_assert_num_queries):
    a, b = pair
    # session, user, the user's and the groups' permissions, snapshots a and b with their tags;
    # the structures whose texts differ (structure_pairs.structure_pairs); SAVEPOINT, 2 x SET LOCAL, the
    # comparison, RELEASE.
    with django_assert_num_queries(14):
        assert get(client, a=a.id, b=b.id).status_code == 200


def test_drift_counts_against_the_golden_snapshot_by_default(client, signed_in, pair, live_values):
    a, b = pair
    golden = SnapshotTag.objects.get_or_create(name="golden", defaults={"protected": True})[0]
    a.tags.add(golden)
    group = TagGroup.objects.create(name="Area")
    tag = Tag.objects.create(group=group, name="Linac")
    for pv in PV.objects.filter(setpoint_address__in=["P:A", "P:B"]):
        pv.tags.add(tag)
    live_values({"P:A": 1.0, "P:B": 5.0, "P:C": NAN, "P:D": None, "P:E": [1.0, 2.0]})
    body = get(client, "/api/v1/drift/").json()
    assert body["snapshot"]["id"] == a.id
    assert (body["totals"]["pvs"], body["totals"]["out_of_tolerance"], body["totals"]["disconnected"]) == (5, 1, 1)
    (area,) = body["groups"]
    assert (area["name"], area["pvs"], area["out_of_tolerance"]) == ("Area", 2, 1)
    (linac,) = area["tags"]
    assert (linac["id"], linac["pvs"], linac["out_of_tolerance"], linac["disconnected"]) == (tag.id, 2, 1, 0)
    rows = client.get(linac["compare"]).json()
    assert [row["pv_name"] for row in rows["results"]] == ["P:B"]
    assert get(client, "/api/v1/drift/", snapshot=b.id).json()["snapshot"]["id"] == b.id


def test_drift_without_a_golden_snapshot_asks_for_one(client, signed_in, pair):
    response = get(client, "/api/v1/drift/")
    assert response.status_code == 400
    message = "There is no golden snapshot: choose one with snapshot=<id>."
    assert response.json() == {
        "error": {
            "status": 400,
            "code": "invalid",
            "message": f"snapshot: {message}",
            "fields": {"snapshot": [message]},
        }
    }
    not_an_id = get(client, "/api/v1/drift/", snapshot="x").json()["error"]["fields"]
    assert not_an_id == {"snapshot": ["Enter a snapshot id."]}
