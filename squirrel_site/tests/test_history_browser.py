"""A PV's archived history on the snapshot page, in Debian's chromium (Playwright), clicking as a
person does: take a snapshot, find a changing PV with the filter form, click its History button and
see the chart (a canvas) with the snapshot's time and the saved value marked, change the window,
then a string PV's last values listed as "not a number". The site's web process asks the
simulated archiver recording the simulated IOC (squirrel_site.testing.archiver)."""

import json
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from pvs import sim
from squirrel_site.testing import eventually
from squirrel_site.testing.site import log_in, screenshot, submit, take_snapshot

pytestmark = [pytest.mark.browser, pytest.mark.ioc, pytest.mark.worker]


# The browser reports each Content-Security-Policy violation as an event (and a console error).
COLLECT_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI} ${event.sourceFile}:${event.lineNumber}`);
});
"""


def open_history(page, address: str):
    """Filter the snapshot page to `address`, click its History button; the panel row under it."""
    page.fill("#id_name", address)
    submit(page)
    row = page.locator(f'tr[data-pv="{address}"]')
    row.locator("button.history-open").click()
    return page.locator("tr.history-row")


def archived_units(archiver, address: str) -> str:
    """The units the archiver has for `address` (its getData.json's meta.EGU; empty until the
    channel's metadata came, a moment after its first value)."""
    now = datetime.now(UTC)
    hour_ago = now - timedelta(hours=1)
    query = urllib.parse.urlencode({"pv": address, "from": hour_ago.isoformat(), "to": now.isoformat()})
    with urllib.request.urlopen(f"{archiver.url}/retrieval/data/getData.json?{query}", timeout=5) as answer:
        return json.load(answer)[0]["meta"]["EGU"]


def test_a_rows_history_chart_marks_the_snapshot_and_the_saved_value(archived_site, browser_page, sim_ioc_registry):
    site, archiver = archived_site
    page = browser_page
    connection.close()  # Playwright's loop makes Django give this thread a connection of its own
    console = []
    page.on("console", lambda message: "Content Security Policy" in message.text and console.append(message.text))
    page.add_init_script(COLLECT_VIOLATIONS)
    changing = sim_ioc_registry.of_kind(sim.CHANGING)[0]
    text = sim_ioc_registry.of_kind(sim.STRING)[0]
    assert changing.setpoint in archiver.addresses and text.setpoint in archiver.addresses
    eventually(lambda: archived_units(archiver, changing.setpoint) == changing.egu, 30, what="the archiver's units")
    log_in(page, site)
    take_snapshot(page, site, "Browser: history")

    panel = open_history(page, changing.setpoint)
    chart = panel.locator(".history-chart")
    chart.locator("canvas").wait_for(state="visible")
    status = panel.locator(".history-status").text_content()
    assert f"{changing.setpoint} from sim:" in status and "samples" in status
    assert changing.egu and f"in {changing.egu}" in status
    # The snapshot's time: a vertical line inside the plot, titled with the time; the saved value: a
    # horizontal one.
    marker = chart.locator(".history-at")
    marker.wait_for(state="visible")
    assert marker.get_attribute("title").startswith("Snapshot taken ")
    chart.locator(".history-saved").wait_for(state="visible")
    assert chart.locator(".history-saved").get_attribute("title").startswith("Saved value ")
    box, over = marker.bounding_box(), chart.locator(".u-over").bounding_box()
    assert over["x"] < box["x"] < over["x"] + over["width"]
    # ± 1 h around the snapshot, which was taken just now: its time is the middle of the plot.
    assert abs(box["x"] - (over["x"] + over["width"] / 2)) < over["width"] * 0.05
    screenshot(page, "40_snapshot_history_chart")
    # uPlot and history.js set styles through the CSSOM only: nothing the policy blocks.
    assert page.evaluate("window.__cspViolations") + console == []

    # A narrower window: the chart is drawn again, the marker still at the snapshot's time.
    panel.get_by_label("Window").select_option(label="± 10 min")
    page.wait_for_function("() => document.querySelectorAll('.history-chart canvas').length === 1")
    chart.locator(".history-at").wait_for(state="visible")
    screenshot(page, "41_snapshot_history_10_min")

    # A string PV: no chart, its last values listed.
    panel = open_history(page, text.setpoint)
    panel.locator(".history-list").wait_for(state="visible")
    assert "not a number" in panel.locator(".history-status").text_content()
    assert panel.locator(".history-chart canvas").count() == 0
    assert str(text.value) in panel.locator(".history-list").text_content()
    screenshot(page, "42_snapshot_history_string")


def test_compare_a_snapshot_with_the_archive_from_the_compare_page(archived_site, browser_page, sim_ioc_registry):
    site, archiver = archived_site
    page = browser_page
    connection.close()
    log_in(page, site)
    snapshot_id = take_snapshot(page, site, "Browser: against the archive")
    page.click("text=Compare with live")
    page.wait_for_url(f"{site}/compare/?a={snapshot_id}&b=live")
    form = page.locator("#compare-archive-form")
    # A time a minute ago, as an operator types it: 24-hour, the server's zone (UTC in the tests).
    at = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S")
    form.get_by_label("Compare").select_option(label="the snapshot against the archive")
    form.get_by_label("at", exact=True).fill(at)
    screenshot(page, "43_compare_against_the_archive_form")
    form.locator("#compare-archive").click()
    # The job's page, then (the worker took the snapshot from the archive) the comparison.
    page.wait_for_url(f"{site}/compare/?a={snapshot_id}&b=*", timeout=60_000)
    archived = int(page.url.rsplit("b=", 1)[1])
    assert archived != snapshot_id
    facts = page.locator("dl.facts").text_content()
    assert f"#{archived} Archive at" in facts
    assert page.locator("#comparison tbody tr").count() > 10
    screenshot(page, "44_compared_with_the_archive")
    # The History buttons and the form: no wider page at 1920 px; at 1400 px, where this data's
    # widest rows (a waveform's differences) overflow already, one glyph's width more at most.
    hide = """(hidden) => { document.querySelectorAll('.history-open, #compare-archive-form')
        .forEach((e) => { e.style.display = hidden ? 'none' : ''; });
        return document.documentElement.scrollWidth - document.documentElement.clientWidth; }"""
    for width, most in ((1400, 30), (1920, 0)):
        page.set_viewport_size({"width": width, "height": 1080})
        without, shown = page.evaluate(hide, True), page.evaluate(hide, False)
        assert shown <= max(without, 0) + most, f"the History controls widen the page by {shown - without} px"
        assert width < 1920 or shown <= 0

    # A time in the future: the form again, with the reason, and no job.
    page.goto(f"{site}/compare/?a={snapshot_id}&b=live")
    form = page.locator("#compare-archive-form")
    form.get_by_label("at", exact=True).fill("2999-01-01 00:00:00")
    with page.expect_navigation():
        form.locator("#compare-archive").click()
    assert "is in the future" in page.locator("#compare-archive-errors").text_content()
    screenshot(page, "45_compare_against_the_archive_refused")
