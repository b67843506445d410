"""The name filters of the compare pages (two columns and several) and of the snapshot page read an
address written with a protocol in the registry's spelling: ``PVA://X`` finds ``pva://X``, and
``ca://X`` finds the Channel Access ``X`` but not the pvAccess channel of the same name."""

import re

import pytest
from django.urls import reverse

from pvs.selections import name_condition
from snapshots.comparison.filtersets import SnapshotValueFilterSet

pytestmark = pytest.mark.django_db

NAMES = ("SR:Q1", "pva://SR:Q1", "pva://SR:Q2", "BO:Q1")


@pytest.fixture
def snapshots(make_snapshot, make_pvs):
    make_pvs(*NAMES)
    values = dict.fromkeys(NAMES, 1.0)
    return [make_snapshot(title, {name: value + n for name, value in values.items()}) for n, title in enumerate("ABC")]


def shown(response) -> list[str]:
    return sorted(re.findall(r'<tr data-pv="([^"]+)"', response.content.decode()))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("PVA://SR:Q", ["pva://SR:Q1", "pva://SR:Q2"]),
        ("pva://sr:q1", ["pva://SR:Q1"]),
        ("ca://SR:Q1", ["SR:Q1"]),
        ("CA://Q1", ["BO:Q1", "SR:Q1"]),
        ("SR:Q1", ["SR:Q1", "pva://SR:Q1"]),  # no protocol: as written, in either
        ("pva://%", []),  # a LIKE wildcard is a character to find, as without a protocol
    ],
)
def test_compare_name_filters_read_either_spelling(client, signed_in, snapshots, name, expected):
    a, b, c = snapshots
    two = client.get(reverse("snapshots:compare"), {"a": a.id, "b": b.id, "name": name})
    several = client.get(reverse("snapshots:compare"), {"a": a.id, "b": [b.id, c.id], "name": name})
    assert (two.status_code, several.status_code) == (200, 200)
    assert shown(two) == expected
    assert shown(several) == expected
    api = client.get("/api/v1/compare/", {"a": a.id, "b": b.id, "name": name})
    assert sorted(row["pv_name"] for row in api.json()["results"]) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [("PVA://SR:Q1", {"pva://SR:Q1"}), ("ca://Q1", {"SR:Q1", "BO:Q1"}), ("q1", {"SR:Q1", "pva://SR:Q1", "BO:Q1"})],
)
def test_the_snapshot_values_name_filter_reads_either_spelling(snapshots, name, expected):
    a = snapshots[0]
    filterset = SnapshotValueFilterSet({"name": name}, queryset=a.values.all())
    assert filterset.is_valid()
    assert {value.pv_name for value in filterset.qs} == expected


def test_the_sql_condition_keeps_to_the_protocol_written():
    assert name_condition("n", "ca://A_B") == ("n ILIKE %s AND n NOT LIKE %s", ["%A\\_B%", "pva://%"])
    assert name_condition("n", "PVA://A") == ("n ILIKE %s", ["pva://A%"])
    assert name_condition("n", "http://A") == ("n ILIKE %s", ["%http://A%"])
