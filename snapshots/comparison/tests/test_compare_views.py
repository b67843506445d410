"""The compare and drift pages: rows, filters, sorting, pages, CSV as shown, live.js marks, errors."""

import csv
import io
import json
from html.parser import HTMLParser

import pytest
import redis
from django.urls import reverse

from monitor import live
from pvs.models import PV
from snapshots.comparison.rows import CSV_HEADER
from snapshots.models import SnapshotTag
from squirrel_site.testing.snapshots import Enum
from tags.models import Tag, TagGroup

pytestmark = pytest.mark.django_db

NAN = float("nan")
# Cells of a #comparison row (after the checkbox column, if any) in CSV_HEADER order.
PAGE_COLUMNS = ["pv_name", "device", "a", "b", "delta", "status", "severity", "abs_tolerance", "rel_tolerance"]


class TableRows(HTMLParser):
    """The rows of one table (by id) as {attribute: value} plus the text of each cell."""

    def __init__(self, table_id: str):
        super().__init__()
        self.table_id, self.depth, self.rows = table_id, 0, []
        self.cell: list[str] | None = None
        self.skip = 0  # inside <details> (array elements) of a cell

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and (self.depth or attrs.get("id") == self.table_id):
            self.depth += 1
        elif self.depth == 1 and tag == "tr":
            self.rows.append({"attrs": attrs, "cells": [], "live": []})
        elif self.depth == 1 and tag in ("td", "th") and self.rows:
            self.cell = []
        elif tag == "details":
            self.skip += 1
        if self.depth == 1 and self.rows and "data-live-address" in attrs:
            self.rows[-1]["live"].append(attrs["data-live-address"])
        if self.depth == 1 and self.rows and "data-live-delta" in attrs:
            self.rows[-1]["delta_marked"] = True

    def handle_endtag(self, tag):
        if tag == "table" and self.depth:
            self.depth -= 1
        elif tag == "details":
            self.skip -= 1
        elif self.depth == 1 and tag in ("td", "th") and self.cell is not None and self.rows:
            self.rows[-1]["cells"].append(" ".join("".join(self.cell).split()))
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None and not self.skip:
            self.cell.append(data)


def table(response, table_id="comparison") -> list[dict]:
    parser = TableRows(table_id)
    parser.feed(response.content.decode())
    return [row for row in parser.rows if row["attrs"].get("data-pv") or row["attrs"].get("data-line")]


def shown(response) -> list[str]:
    return [row["attrs"]["data-pv"] for row in table(response)]


@pytest.fixture
def pair(before_after):
    return before_after


def page(client, **params):
    return client.get(reverse("snapshots:compare"), params)


def test_pages_need_a_login(client, pair):
    for url in (reverse("snapshots:compare"), reverse("snapshots:drift")):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_a_first_visit_shows_the_form_only(client, signed_in, pair):
    response = page(client)
    assert response.status_code == 200 and 'id="compare-form"' in response.text and table(response) == []
    assert 'href="/compare/"' in response.text and 'href="/drift/"' in response.text  # in the nav


def test_the_page_shows_every_row_with_its_status(client, signed_in, pair):
    a, b = pair
    response = page(client, a=a.id, b=b.id)
    rows = {row["attrs"]["data-pv"]: row for row in table(response)}
    assert list(rows) == ["P:A", "P:B", "P:C", "P:D", "P:E", "P:F", "P:G"]
    status = {name: row["attrs"]["data-status"] for name, row in rows.items()}
    assert status == {
        "P:A": "within",
        "P:B": "out_of_tolerance",
        "P:C": "out_of_tolerance",
        "P:D": "out_of_tolerance",
        "P:E": "out_of_tolerance",
        "P:F": "only_in_a",
        "P:G": "only_in_b",
    }
    assert rows["P:B"]["attrs"]["class"] == "out-of-tolerance" and "class" not in rows["P:A"]["attrs"]
    cells = dict(zip(PAGE_COLUMNS, rows["P:D"]["cells"], strict=False))
    assert (cells["a"], cells["b"], cells["status"]) == ("On", "Fault", "Out of tolerance")  # enums by label
    assert dict(zip(PAGE_COLUMNS, rows["P:B"]["cells"], strict=False))["delta"] == "+1.00"
    assert "<tr><td>1</td><td>2.00</td><td>2.50</td><td>+0.50</td></tr>" in response.text  # array elements
    assert "Out of tolerance: <strong>4</strong>" in response.text


def test_filters_sorting_and_pages(client, signed_in, pair):
    a, b = pair
    tag = Tag.objects.create(group=TagGroup.objects.create(name="Area"), name="Ring")
    PV.objects.get(setpoint_address="P:B").tags.add(tag)
    assert shown(page(client, a=a.id, b=b.id, differences_only="on")) == ["P:B", "P:C", "P:D", "P:E", "P:F", "P:G"]
    assert shown(page(client, a=a.id, b=b.id, tag=tag.id)) == ["P:B"]
    assert shown(page(client, a=a.id, b=b.id, status="only_in_b")) == ["P:G"]
    assert shown(page(client, a=a.id, b=b.id, name="c")) == ["P:C"]
    assert shown(page(client, a=a.id, b=b.id, abs_tol="2", differences_only="on")) == ["P:C", "P:D", "P:F", "P:G"]
    assert shown(page(client, a=a.id, b=b.id, sort="-delta"))[:3] == ["P:C", "P:B", "P:E"]
    first = page(client, a=a.id, b=b.id, page_size=3)
    assert shown(first) == ["P:A", "P:B", "P:C"] and "rows 1–3 of 7" in first.text
    assert shown(page(client, a=a.id, b=b.id, page_size=3, page=3)) == ["P:G"]
    assert f'href="?a={a.id}&amp;b={b.id}&amp;page_size=3&amp;page=2" rel="next"' in first.text


def test_csv_holds_exactly_the_rows_and_cells_the_page_shows(client, signed_in, pair):
    a, b = pair
    params = {"a": a.id, "b": b.id, "differences_only": "on", "sort": "-delta"}
    response = page(client, **params)
    exported = client.get(reverse("snapshots:compare"), {**params, "format": "csv"})
    assert exported["Content-Type"].startswith("text/csv")
    assert exported["Content-Disposition"] == f'attachment; filename="compare-{a.id}-{b.id}.csv"'
    lines = list(csv.reader(io.StringIO(exported.content.decode())))
    assert lines[0] == CSV_HEADER
    on_page = [dict(zip(PAGE_COLUMNS, row["cells"], strict=False)) for row in table(response)]
    in_csv = [dict(zip(CSV_HEADER, line, strict=False)) for line in lines[1:]]
    assert len(in_csv) == len(on_page) == 6
    for shown_row, exported_row in zip(on_page, in_csv, strict=True):
        shown_row["pv_name"] = shown_row["pv_name"].removesuffix(" not in registry")  # a badge beside the name
        if shown_row["pv_name"] == "P:E":  # an array: the page shortens the delta, the CSV has every element
            assert exported_row["delta"] == "[0.00, +0.50, 0.00]"
            shown_row["delta"] = exported_row["delta"] = ""
        if exported_row["severity"] == "NO_ALARM":  # the page shows alarms only, in their colours
            assert shown_row["severity"] == ""
            exported_row["severity"] = ""
        assert shown_row == exported_row


def test_csv_link_keeps_the_filters(client, signed_in, pair):
    a, b = pair
    response = page(client, a=a.id, b=b.id, name="P", page=1)
    assert f'href="?a={a.id}&amp;b={b.id}&amp;name=P&amp;format=csv" id="csv-export"' in response.text


def test_live_rows_carry_the_marks_live_js_follows(client, signed_in, pair, live_values):
    a, _ = pair
    PV.objects.filter(setpoint_address="P:B").update(setpoint_address="P:B2")  # renamed since the snapshot
    live_values({"P:A": 1.0, "P:B2": 2.5, "P:C": NAN, "P:D": Enum(0), "P:E": [1.0, 2.0, 3.0], "P:F": "manual"})
    rows = {row["attrs"]["data-pv"]: row for row in table(page(client, a=a.id, b="live"))}
    b = rows["P:B"]
    assert b["live"] == ["P:B2"] and b.get("delta_marked")
    assert (b["attrs"]["data-kind"], b["attrs"]["data-abs-tol"], b["attrs"]["data-rel-tol"]) == ("float", "0.1", "0.0")
    assert json.loads(b["attrs"]["data-saved"]) == 2.0 and b["attrs"]["data-precision"] == "2"
    assert (
        dict(zip(PAGE_COLUMNS, b["cells"], strict=False))["b"] == "2.5"
    )  # when the page was made, with the live precision
    assert json.loads(rows["P:C"]["attrs"]["data-saved"]) == "NaN"
    assert json.loads(rows["P:E"]["attrs"]["data-saved"]) == [1.0, 2.0, 3.0]
    assert rows["P:D"]["attrs"]["data-kind"] == "enum" and json.loads(rows["P:D"]["attrs"]["data-saved"]) == 1


def test_live_rows_without_a_saved_value_are_not_compared_by_live_js(
    client, signed_in, make_snapshot, make_pvs, live_values
):
    make_pvs("Q:A", "Q:B")
    snapshot = make_snapshot("S", {"Q:A": None, "Q:B": 1.0})
    PV.objects.get(setpoint_address="Q:B").delete()
    live_values({"Q:A": 1.0})
    rows = {row["attrs"]["data-pv"]: row for row in table(page(client, a=snapshot.id))}
    assert rows["Q:A"]["live"] == ["Q:A"] and "data-saved" not in rows["Q:A"]["attrs"]
    assert rows["Q:B"]["live"] == [] and rows["Q:B"]["attrs"]["data-status"] == "only_in_a"


def test_the_forms_any_options_mean_no_filter(client, signed_in, pair):
    a, b = pair
    blanks = {"abs_tol": "", "rel_tol": "", "status": "", "severity": "", "name": "", "tag": "", "tag_group": ""}
    response = page(client, a=a.id, b=b.id, device="", **blanks)  # what the browser sends for "any"
    assert response.status_code == 200 and len(shown(response)) == 7
    response = client.get(reverse("snapshots:compare"), {"a": a.id, "b": b.id, "status": ["", "only_in_b"], "tag": ""})
    assert response.status_code == 200 and shown(response) == ["P:G"]


def test_bad_parameters_show_the_form_with_messages(client, signed_in, pair):
    a, _ = pair
    response = page(client, a=a.id, abs_tol="-1", b="999")
    assert response.status_code == 400
    assert "abs_tol: Ensure this value is greater than or equal to 0." in response.text
    assert "b: Snapshot 999 does not exist." in response.text and table(response) == []


def test_without_redis_the_live_page_says_so(client, signed_in, pair, monkeypatch):
    a, _ = pair

    def unreachable(addresses, client=None):
        raise redis.ConnectionError("refused")

    monkeypatch.setattr(live, "read_values", unreachable)
    response = page(client, a=a.id, b="live")
    assert response.status_code == 503 and "Redis cannot be reached" in response.text


def test_operators_may_restore_checked_rows_of_a(client, operator, pair):
    a, b = pair
    client.force_login(operator)
    response = page(client, a=a.id, b=b.id)
    assert f'action="{reverse("snapshots:restore_preview_create", args=[a.id])}"' in response.text
    assert response.text.count('type="checkbox" name="pv"') == 6  # not P:G, which A does not hold


def test_viewers_get_no_restore_form(client, signed_in, pair):
    a, b = pair
    assert 'id="restore-checked"' not in page(client, a=a.id, b=b.id).text


def test_drift_page_counts_per_tag_and_links_to_the_rows(client, signed_in, pair, live_values):
    a, _ = pair
    a.tags.add(SnapshotTag.objects.get_or_create(name="golden", defaults={"protected": True})[0])
    area = TagGroup.objects.create(name="Area")
    linac = Tag.objects.create(group=area, name="Linac")
    for pv in PV.objects.filter(setpoint_address__in=["P:A", "P:B"]):
        pv.tags.add(linac)
    live_values({"P:A": 1.0, "P:B": 5.0, "P:C": NAN, "P:D": None, "P:E": [1.0, 2.0, 3.0], "P:F": "auto"})
    response = client.get(reverse("snapshots:drift"))
    assert response.status_code == 200
    lines = {row["attrs"]["data-line"]: row["cells"] for row in table(response, "drift")}
    assert lines["total-0"] == ["All PVs", "6", "1", "1", "0"]
    assert lines[f"group-{area.id}"] == ["Area", "2", "1", "0", "0"]
    assert lines[f"tag-{linac.id}"] == ["Linac", "2", "1", "0", "0"]
    link = f'href="/compare/?a={a.id}&amp;b=live&amp;tag={linac.id}&amp;status=out_of_tolerance"'
    assert link in response.text
    followed = page(client, a=a.id, b="live", tag=linac.id, status="out_of_tolerance")
    assert shown(followed) == ["P:B"]


def test_drift_page_without_a_golden_snapshot_asks_for_one(client, signed_in, pair):
    response = client.get(reverse("snapshots:drift"))
    assert response.status_code == 200 and "There is no golden snapshot" in response.text
    assert client.get(reverse("snapshots:drift"), {"snapshot": "999"}).status_code == 400
