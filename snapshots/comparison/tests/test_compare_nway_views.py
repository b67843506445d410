"""The compare page and API with several columns (b repeated): rows, cells, readbacks, alarms, CSV, errors."""

import csv
import io
import re

import pytest
import redis
from django.urls import reverse

from monitor import live
from pvs.models import PV, PVSet
from pvs.pv_sets import pv_ids, save_pv_set
from snapshots.capture.models import SnapshotValue
from squirrel_site.audit import AuditVia
from squirrel_site.testing.snapshots import Enum

pytestmark = pytest.mark.django_db


@pytest.fixture
def three(make_snapshot, make_pvs):
    make_pvs("N:A", "N:B", "N:C", abs_tolerance=0.1, device="MAG")
    a = make_snapshot("Ref", {"N:A": 1.0, "N:B": 2.0, "N:C": Enum(1)}, precision=2)
    b = make_snapshot("B", {"N:A": 1.05, "N:B": 3.0, "N:C": Enum(2)}, severities={"N:B": 2}, precision=2)
    c = make_snapshot("C", {"N:A": 1.0, "N:B": "=cmd", "N:D": None}, precision=2)
    SnapshotValue.objects.filter(pv_name="N:A").update(units="mA")
    SnapshotValue.objects.filter(snapshot=a, pv_name="N:A").update(readback_name="N:A:RB", readback_num=0.97)
    return a, b, c


def rows(response) -> dict[str, str]:
    """data-pv -> the row's HTML."""
    body = response.content.decode()
    return dict(re.findall(r'<tr data-pv="([^"]+)".*?>(.*?)</tr>', body, re.S))


def test_the_page_puts_each_column_beside_the_reference(client, signed_in, three):
    a, b, c = three
    response = client.get(reverse("snapshots:compare"), {"a": a.id, "b": [b.id, c.id, ""], "status": ""})
    assert response.status_code == 200
    shown = rows(response)
    assert list(shown) == ["N:A", "N:B", "N:C", "N:D"]
    assert 'data-statuses="within equal"' in response.text
    assert '<tr data-pv="N:D" data-statuses="absent only_in_b"' in response.text
    assert "+0.05 mA" in shown["N:A"] and "rb 0.97 mA" in shown["N:A"]  # Δ signed with units; the readback
    assert "alarm-major" in shown["N:B"] and "+1.00" in shown["N:B"] and "Type changed" in shown["N:B"]
    assert "alarm-disconnected" in shown["N:D"] and "Only in B" in shown["N:D"]
    assert 'href="/live/?pv=N%3AA"' in shown["N:A"]  # the PV's live values
    # One B menu per column, so the next submit keeps them.
    assert response.text.count('<select name="b"') == 3  # the two columns and the "Add a snapshot" template
    differing = client.get(reverse("snapshots:compare"), {"a": a.id, "b": [b.id, c.id], "differences_only": "on"})
    assert list(rows(differing)) == ["N:B", "N:C", "N:D"]  # N:A is within tolerance in B, equal in C
    only_b = client.get(reverse("snapshots:compare"), {"a": a.id, "b": [b.id, b.id], "differences_only": "on"})
    assert list(rows(only_b)) == ["N:B", "N:C"]  # N:D is in neither A nor B
    named = client.get(reverse("snapshots:compare"), {"a": a.id, "b": [b.id, c.id], "name": "n:c", "sort": "-name"})
    assert list(rows(named)) == ["N:C"]


def test_alarms_are_colours_not_text(client, signed_in, three):
    a, b, _ = three
    two_way = client.get(reverse("snapshots:compare"), {"a": a.id, "b": b.id})
    assert '<tr data-pv="N:B" data-status="out_of_tolerance" class="out-of-tolerance alarm-major">' in two_way.text
    assert '<span class="alarm-major" title="The higher alarm severity of A and B">MAJOR</span>' in two_way.text
    assert "NO_ALARM" not in two_way.text
    nway = client.get(reverse("snapshots:compare"), {"a": a.id, "b": [b.id, b.id]})
    assert 'data-statuses="out_of_tolerance out_of_tolerance" class="differs alarm-major"' in nway.text


def test_the_live_column_carries_the_marks_live_js_follows(client, signed_in, three, live_values):
    """As the two-way page's rows: A's value, kind, tolerances and precision on the row; the live
    value, its readback and Δ (with A's units) marked; the highlight on the live column's cells."""
    a, b, _ = three
    PV.objects.filter(setpoint_address="N:A").update(readback_address="N:A:RB")
    live_values({"N:A": 1.5, "N:A:RB": 1.49, "N:B": 2.0})
    response = client.get(reverse("snapshots:compare"), {"a": a.id, "b": [b.id, "live"]})
    assert response.status_code == 200
    shown = rows(response)
    assert (
        '<tr data-pv="N:A" data-statuses="within out_of_tolerance" class="differs" data-saved="1.0" data-kind="float"'
        ' data-abs-tol="0.1" data-rel-tol="0.0" data-precision="2">' in response.text
    )
    assert '<span data-live-address="N:A">1.5</span>' in shown["N:A"]
    assert 'rb <span data-live-address="N:A:RB">1.49</span>' in shown["N:A"]
    assert '<span data-live-delta data-units="mA">+0.50 mA</span>' in shown["N:A"]
    assert shown["N:A"].count("data-live-highlight") == 2 and shown["N:A"].count("data-live-address") == 2
    # Only the live column is live: the snapshot column's value and Δ stay as they are.
    assert '<td class="value " data-status="within" title="Within tolerance: 1.05 mA">1.05 mA</td>' in shown["N:A"]
    two_snapshots = client.get(reverse("snapshots:compare"), {"a": a.id, "b": [b.id, b.id]})
    assert "data-live" not in two_snapshots.text and "data-saved" not in two_snapshots.text


def test_csv_has_every_column_and_is_safe(client, signed_in, three):
    a, b, c = three
    response = client.get(reverse("snapshots:compare"), {"a": a.id, "b": [b.id, c.id], "format": "csv"})
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="compare-{a.id}-{b.id}-{c.id}.csv"'
    table = list(csv.reader(io.StringIO(response.content.decode())))
    assert table[0][:8] == [
        "pv_name",
        "device",
        f"reference #{a.id}",
        "reference readback",
        f"#{b.id}",
        f"#{b.id} readback",
        f"#{b.id} delta",
        f"#{b.id} status",
    ]
    by_name = {line[0]: dict(zip(table[0], line, strict=True)) for line in table[1:]}
    assert by_name["N:A"]["reference readback"] == "0.97 mA" and by_name["N:A"][f"#{b.id} delta"] == "+0.05"
    assert by_name["N:B"][f"#{c.id}"] == "'=cmd"  # a formula is written as text


def test_bad_columns_are_form_errors(client, signed_in, three):
    a, b, _ = three
    page = reverse("snapshots:compare")
    response = client.get(page, {"a": a.id, "b": ["live", "live"]})
    assert response.status_code == 400 and "b: Live values can be one column only." in response.text, re.findall(
        r"compare-errors.*?</ul>", response.text, re.S
    )
    response = client.get(page, {"a": a.id, "b": [b.id] * 9})
    assert response.status_code == 400 and "b: Compare at most 8 columns with the reference." in response.text
    response = client.get(page, {"a": a.id, "b": [b.id, "999"], "sort": "delta"})
    assert response.status_code == 400 and "b: Snapshot 999 does not exist." in response.text
    assert "sort: Select a valid choice." in response.text


def test_the_api_gives_the_same_columns(client, signed_in, three, live_values):
    a, b, c = three
    PV.objects.filter(setpoint_address="N:A").update(readback_address="N:A:RB")
    live_values({"N:A": 1.0, "N:A:RB": 1.01, "N:B": 2.0})
    url = reverse("snapshots-api:compare-columns")
    response = client.get(url, {"a": a.id, "b": [b.id, "live", c.id], "page_size": 2})
    assert response.status_code == 200
    body = response.json()
    assert body["a"]["id"] == a.id and [col if col == "live" else col["id"] for col in body["columns"]] == [
        b.id,
        "live",
        c.id,
    ]
    assert (
        body["count"] == 4 and "&page=2&" in body["next"] and body["next"].count("b=") == 3 and body["previous"] is None
    )
    first = body["results"][0]
    assert first["pv_name"] == "N:A" and first["reference"]["readback"]["value"] == 0.97
    assert [cell["status"] for cell in first["columns"]] == ["within", "equal", "equal"]
    assert first["columns"][1]["value"]["readback"]["value"] == 1.01
    assert first["columns"][0]["delta_display"] == "+0.05 mA"
    assert body["counts"][1]["equal"] == 2
    assert client.get(url, {"a": a.id, "b": ["live", "live"]}).json()["error"]["fields"] == {
        "b": ["Live values can be one column only."]
    }


def test_a_pv_set_is_offered_and_narrows_every_column(client, signed_in, three):
    a, b, c = three
    pv_set = save_pv_set(PVSet(name="Just B"), member_ids=pv_ids(["N:B"]), actor=None, via=AuditVia.PAGE)
    form = client.get(reverse("snapshots:compare"))
    assert f'<option value="{pv_set.id}">Just B</option>' in form.text
    response = client.get(reverse("snapshots:compare"), {"a": a.id, "b": [b.id, c.id], "pv_set": pv_set.id})
    assert response.status_code == 200 and list(rows(response)) == ["N:B"]
    assert f'<option value="{pv_set.id}" selected>Just B</option>' in response.text


def test_a_live_column_without_redis_says_so(client, signed_in, three, monkeypatch):
    a, b, _ = three

    def unreachable(addresses, client=None):
        raise redis.ConnectionError("refused")

    monkeypatch.setattr(live, "read_values", unreachable)
    response = client.get(reverse("snapshots:compare"), {"a": a.id, "b": [b.id, "live"]})
    assert response.status_code == 503 and "Redis cannot be reached" in response.text
    api = client.get(reverse("snapshots-api:compare-columns"), {"a": a.id, "b": [b.id, "live"]})
    assert api.status_code == 503
    assert client.get(reverse("snapshots:compare"), {"a": a.id, "b": [b.id, b.id]}).status_code == 200
