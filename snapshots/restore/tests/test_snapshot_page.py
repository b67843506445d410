"""One snapshot's page: its values with live cells, filters (against live values too), sorting, pages."""

import re

import pytest
from django.urls import reverse

from pvs.models import PV
from snapshots.models import Snapshot, SnapshotMode, SnapshotValue, ValueType
from tags.models import Tag, TagGroup

pytestmark = pytest.mark.django_db


@pytest.fixture
def machine(admin_user, live_values):
    """A snapshot of every kind of value, and live values: Q2 and WAVE moved, LOST disconnected now."""
    area = TagGroup.objects.create(name="Area")
    li20, li21 = (Tag.objects.create(group=area, name=name) for name in ("LI20", "LI21"))
    pvs = {
        "Q1": PV.objects.create(
            setpoint_address="T:Q1_SP", readback_address="T:Q1_RB", device="QUAD:LI20:1", abs_tolerance=0.1
        ),
        "Q2": PV.objects.create(setpoint_address="T:Q2_SP", device="QUAD:LI21:2", abs_tolerance=0.1),
        "MODE": PV.objects.create(setpoint_address="T:MODE", device="KLYS:LI20"),
        "NAME": PV.objects.create(setpoint_address="T:NAME", device="KLYS:LI20"),
        "WAVE": PV.objects.create(setpoint_address="T:WAVE", device="BPM:LI21", rel_tolerance=0.01),
        "GONE": PV.objects.create(setpoint_address="T:GONE", device="BPM:LI21"),
        "LOST": PV.objects.create(setpoint_address="T:LOST", device="BPM:LI21"),
    }
    for name in ("Q1", "MODE", "NAME"):
        pvs[name].tags.add(li20)
    for name in ("Q2", "WAVE", "GONE", "LOST"):
        pvs[name].tags.add(li21)
    snapshot = Snapshot.objects.create(
        title="Tuned", created_by=admin_user, mode=SnapshotMode.DIRECT, pv_count=8, disconnected_count=1
    )
    rows = [
        ("Q1", ValueType.FLOAT, {"setpoint_num": 1.0, "readback_num": 1.02, "precision": 2, "units": "A"}),
        ("Q2", ValueType.FLOAT, {"setpoint_num": 2.0, "severity": 2}),
        ("MODE", ValueType.ENUM, {"setpoint_num": 1, "setpoint_str": "On", "enum_labels": ["Off", "On"]}),
        ("NAME", ValueType.STRING, {"setpoint_str": "abc", "severity": 1}),
        ("WAVE", ValueType.FLOAT_ARRAY, {"setpoint_array": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]}),
        ("GONE", ValueType.NONE, {"connected": False, "reason": "timeout", "severity": None}),
        ("LOST", ValueType.FLOAT, {"setpoint_num": 5.0}),
    ]
    for name, value_type, fields in rows:
        pv = pvs[name]
        SnapshotValue.objects.create(
            snapshot=snapshot,
            pv=pv,
            pv_name=pv.setpoint_address,
            value_type=value_type,
            source="direct",
            severity=fields.pop("severity", 0),
            **fields,
        )
    SnapshotValue.objects.create(
        snapshot=snapshot,
        pv=None,
        pv_name="T:DELETED",
        value_type=ValueType.FLOAT,
        setpoint_num=9.0,
        source="direct",
        severity=0,
    )
    live_values(
        {
            "T:Q1_SP": 1.05,
            "T:Q1_RB": 1.04,
            "T:Q2_SP": 3.0,
            "T:MODE": ("enum", 1),
            "T:NAME": ("string", "abc"),
            "T:WAVE": ("float_array", [1.0, 2.0, 3.0, 4.5, 5.0, 6.0, 7.0]),
            "T:GONE": None,
            "T:LOST": None,
        }
    )
    return snapshot


def shown(response) -> list[str]:
    return [row["value"].pv_name for row in response.context["rows"]]


def detail(client, snapshot, **query):
    return client.get(reverse("snapshots:detail", args=[snapshot.pk]), query)


def test_snapshot_page_needs_a_login(client, machine):
    response = detail(client, machine)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_unknown_snapshot_is_404(client, viewer):
    client.force_login(viewer)
    assert client.get(reverse("snapshots:detail", args=[999])).status_code == 404


def test_snapshot_page_shows_every_value_with_its_live_cells(client, viewer, machine, django_assert_max_num_queries):
    client.force_login(viewer)
    # Session, user, snapshot, its tags, values, their tags, permissions (2), restores, filter choices (2).
    with django_assert_max_num_queries(11):
        response = detail(client, machine)
    assert shown(response) == ["T:DELETED", "T:GONE", "T:LOST", "T:MODE", "T:NAME", "T:Q1_SP", "T:Q2_SP", "T:WAVE"]
    page = response.text
    assert 'data-live-address="T:Q1_SP"' in page and 'data-live-address="T:Q1_RB"' in page
    assert 'data-saved="1.0" data-kind="float" data-abs-tol="0.1" data-rel-tol="0.0"' in page
    assert 'data-saved="[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]" data-kind="float_array"' in page
    assert 'data-saved="&quot;abc&quot;" data-kind="string"' in page
    assert "1.00 A" in page and "1.02 A" in page  # precision and units
    # Enums by label, the index in the tooltip.
    assert '<td class="value" title="On (index 1) · Direct read"><span class="clip">On</span></td>' in page.replace(
        ", 0.00 s old", ""
    )
    assert "[1, 2, 3, 4, 5, … (7 values)]" in page  # as monitor.display shows live values
    assert "not in registry" in page and "timeout" in page
    assert page.count("data-live-delta") == 8
    assert 'data-live-delta data-units="A"' in page  # live.js writes the delta with the units
    assert "rows 1–8 of 8" in page


def test_snapshot_rows_are_one_line_with_alarm_colours_and_tags_in_a_column(client, viewer, machine):
    client.force_login(viewer)
    page = detail(client, machine).text
    rows = {name: row for name, row in re.findall(r'<tr data-pv="([^"]+)"(.*?)</tr>', page, re.S)}
    # Severity as the alarm colour, on the row and in its cell; NO_ALARM is not spelled out.
    assert rows["T:Q2_SP"].startswith(' class="alarm-major"') and '<span class="alarm-major"' in rows["T:Q2_SP"]
    assert rows["T:NAME"].startswith(' class="alarm-minor"') and ">MINOR</span>" in rows["T:NAME"]
    assert rows["T:GONE"].startswith(' class="alarm-disconnected"') and ">disconnected</span>" in rows["T:GONE"]
    assert not rows["T:Q1_SP"].startswith(" class=") and "NO_ALARM" not in page
    # Tags in their own cell, on the row's one line, the groups in the tooltip.
    assert '<td class="tags"><span class="clip" title="Area: LI20">LI20</span></td>' in rows["T:Q1_SP"]
    assert "<div>" not in "".join(rows.values())


@pytest.mark.parametrize(
    "query, expected",
    [
        ({"tag": "LI20"}, ["T:MODE", "T:NAME", "T:Q1_SP"]),
        ({"tag_group": "Area"}, ["T:GONE", "T:LOST", "T:MODE", "T:NAME", "T:Q1_SP", "T:Q2_SP", "T:WAVE"]),
        ({"device": "quad"}, ["T:Q1_SP", "T:Q2_SP"]),
        ({"name": "q"}, ["T:Q1_SP", "T:Q2_SP"]),
        ({"severity": "1"}, ["T:NAME", "T:Q2_SP"]),
        ({"severity": "2"}, ["T:Q2_SP"]),
        ({"connection": "saved"}, ["T:GONE"]),
        ({"connection": "live"}, ["T:GONE", "T:LOST"]),
        ({"out_of_tolerance": "on"}, ["T:Q2_SP", "T:WAVE"]),
        ({"out_of_tolerance": "on", "device": "BPM"}, ["T:WAVE"]),
    ],
)
def test_snapshot_page_filters(client, viewer, machine, query, expected):
    client.force_login(viewer)
    if "tag" in query:
        query["tag"] = Tag.objects.get(name=query["tag"]).pk
    if "tag_group" in query:
        query["tag_group"] = TagGroup.objects.get(name=query["tag_group"]).pk
    assert shown(detail(client, machine, **query)) == expected


def test_live_filters_say_how_many_rows_they_found(client, viewer, machine):
    client.force_login(viewer)
    assert "rows 1–2 of 2" in detail(client, machine, out_of_tolerance="on").text


@pytest.mark.parametrize(
    "sort, expected",
    [
        ("-name", ["T:WAVE", "T:Q2_SP", "T:Q1_SP", "T:NAME", "T:MODE", "T:LOST", "T:GONE", "T:DELETED"]),
        ("device", ["T:GONE", "T:LOST", "T:WAVE", "T:MODE", "T:NAME", "T:Q1_SP", "T:Q2_SP", "T:DELETED"]),
        ("-severity", ["T:Q2_SP", "T:NAME", "T:DELETED", "T:LOST", "T:MODE", "T:Q1_SP", "T:WAVE", "T:GONE"]),
        ("type", ["T:MODE", "T:DELETED", "T:LOST", "T:Q1_SP", "T:Q2_SP", "T:WAVE", "T:GONE", "T:NAME"]),
        ("nonsense", ["T:DELETED", "T:GONE", "T:LOST", "T:MODE", "T:NAME", "T:Q1_SP", "T:Q2_SP", "T:WAVE"]),
    ],
)
def test_snapshot_page_sorts_on_the_server(client, viewer, machine, sort, expected):
    client.force_login(viewer)
    assert shown(detail(client, machine, sort=sort)) == expected


def test_sort_links_keep_the_filters_and_flip_the_direction(client, viewer, machine):
    client.force_login(viewer)
    columns = detail(client, machine, sort="device", device="B").context["columns"]
    assert columns["device"].url == "?device=B&sort=-device"
    assert columns["name"].url == "?device=B&sort=name"


@pytest.mark.parametrize(
    "query, error",
    [
        ({"tag": "999"}, "Select a valid choice. That choice is not one of the available choices."),
        ({"severity": "9"}, "Select a valid choice. 9 is not one of the available choices."),
        ({"connection": "sometimes"}, "Select a valid choice. sometimes is not one of the available choices."),
    ],
)
def test_bad_filters_are_readable_form_errors(client, viewer, machine, query, error):
    client.force_login(viewer)
    response = detail(client, machine, **query)
    assert response.status_code == 200
    assert error in response.text
    assert shown(response) == [] and "Fix the filters above." in response.text


@pytest.fixture
def big_snapshot(admin_user):
    snapshot = Snapshot.objects.create(title="Big", created_by=admin_user, mode=SnapshotMode.CACHE, pv_count=250)
    SnapshotValue.objects.bulk_create(
        SnapshotValue(
            snapshot=snapshot, pv_name=f"B:{i:04}", value_type=ValueType.FLOAT, setpoint_num=float(i), source="cache"
        )
        for i in range(250)
    )
    return snapshot


def test_snapshot_page_is_paged_by_100_without_counting_filtered_rows(client, viewer, big_snapshot):
    client.force_login(viewer)
    first = detail(client, big_snapshot)
    assert shown(first)[0] == "B:0000" and len(shown(first)) == 100
    assert "rows 1–100 of 250" in first.text and "Page 1 of 3" in first.text
    third = detail(client, big_snapshot, page=3)
    assert shown(third)[0] == "B:0200" and len(shown(third)) == 50 and not third.context["page"].has_next
    filtered = detail(client, big_snapshot, name="B:01", page=1)
    assert len(shown(filtered)) == 100 and filtered.context["page"].count is None
    assert filtered.context["page"].next_url == "?name=B%3A01&page=2"


@pytest.mark.parametrize("page", ["abc", "-3", "0"])
def test_a_bad_page_number_shows_the_first_page(client, viewer, big_snapshot, page):
    client.force_login(viewer)
    assert shown(detail(client, big_snapshot, page=page))[0] == "B:0000"


def test_a_page_past_the_end_is_empty_not_an_error(client, viewer, big_snapshot):
    client.force_login(viewer)
    response = detail(client, big_snapshot, page=999999)
    assert response.status_code == 200 and shown(response) == []


def test_restore_buttons_only_for_users_who_may_restore(client, viewer, operator, machine):
    client.force_login(viewer)
    page = detail(client, machine).text
    assert 'id="restore-toolbar"' not in page and 'name="pv" value=' not in page
    client.force_login(operator)
    page = detail(client, machine, device="QUAD").text
    assert 'id="restore-toolbar"' in page
    assert f'name="pv" value="{PV.objects.get(setpoint_address="T:Q1_SP").pk}"' in page
    assert '<input type="hidden" name="filter-device" value="QUAD">' in page
