"""The compare and drift pages in Debian's chromium, against the whole system on loopback.

The system (daphne, worker, monitor, simulated IOC) and the browser are squirrel_site's browser
test fixtures; screenshots go to test-artifacts/screenshots/ (names starting with "compare_").
"""

import pytest

from pvs import sim
from squirrel_site.testing.ioc import caget_many
from squirrel_site.testing.site import (
    LIVE_CHANGE_LIMIT_MS,
    live_cell_latency_ms,
    log_in,
    screenshot,
    take_snapshot,
    wait_for_live,
)

pytestmark = [pytest.mark.browser, pytest.mark.ioc, pytest.mark.worker]


def test_compare_page_follows_the_ioc_then_compares_snapshots_and_drift(
    site,
    browser_page,
    sim_ioc_registry,
    put_on_ioc,
):
    page = browser_page
    pair = sim_ioc_registry.of_kind(sim.PAIR)[5]
    log_in(page, site)
    before_id = take_snapshot(page, site, "Browser compare: before")

    # Against live values: the live cell, delta and highlight follow the IOC.
    page.goto(f"{site}/compare/?a={before_id}&b=live&device={pair.device}")
    wait_for_live(page, pair.setpoint)
    row = page.locator(f'tr[data-pv="{pair.setpoint}"]')
    assert row.get_attribute("data-status") in ("equal", "within")
    assert "out-of-tolerance" not in (row.get_attribute("class") or "")
    screenshot(page, "compare_01_live")
    target = caget_many([pair.setpoint])[pair.setpoint] + 5.0
    latency_ms = live_cell_latency_ms(page, put_on_ioc, pair.setpoint, target)
    assert latency_ms <= LIVE_CHANGE_LIMIT_MS, f"the live cell changed {latency_ms:.0f} ms after the put"
    page.wait_for_function(
        f"() => document.querySelector('tr[data-pv=\"{pair.setpoint}\"]').classList.contains('out-of-tolerance')"
    )
    assert row.locator("[data-live-delta]").text_content().startswith("5.000")
    screenshot(page, "compare_02_live_change")

    # A reload counts it as a difference; the CSV holds the rows shown.
    page.goto(f"{site}/compare/?a={before_id}&b=live&differences_only=on")
    assert page.locator(f'tr[data-pv="{pair.setpoint}"]').get_attribute("data-status") == "out_of_tolerance"
    csv = page.request.get(page.locator("#csv-export").get_attribute("href").replace("?", f"{site}/compare/?", 1))
    assert csv.ok and pair.setpoint in csv.text()
    screenshot(page, "compare_03_live_differences")

    # Snapshot against snapshot.
    after_id = take_snapshot(page, site, "Browser compare: after")
    page.goto(f"{site}/compare/?a={before_id}&b={after_id}&differences_only=on&sort=-delta")
    changed = page.locator(f'tr[data-pv="{pair.setpoint}"]')
    assert changed.get_attribute("data-status") == "out_of_tolerance"
    assert changed.locator("td.delta").text_content().strip().startswith("+5.000")
    screenshot(page, "compare_04_snapshots")

    # Drift against the first snapshot, and a click through to the rows of one tag.
    page.goto(f"{site}/drift/?snapshot={before_id}")
    total = page.locator('tr[data-line="total-0"] td').all_text_contents()
    assert int(total[2]) >= 1  # out of tolerance
    screenshot(page, "compare_05_drift")
    out_of_tolerance_links = page.locator("tr.drift-tag.out-of-tolerance td:nth-child(3) a")
    out_of_tolerance_links.first.click()
    page.wait_for_url(f"{site}/compare/?*")
    assert page.locator("#comparison tbody tr[data-status='out_of_tolerance']").count() >= 1
    screenshot(page, "compare_06_drift_click_through")


def test_compare_form_submits_as_a_person_fills_it(site, browser_page, sim_ioc_registry):
    """The page's own form, submitted with Status and Tag left at "any" (the browser sends
    status=&tag=), then again after changing a filter on the result: both answer with rows."""
    page = browser_page
    pair = sim_ioc_registry.of_kind(sim.PAIR)[3]
    log_in(page, site)
    snapshot_id = take_snapshot(page, site, "Browser compare form")

    page.click("nav.mainnav >> text=Compare")
    page.wait_for_url(f"{site}/compare/")
    page.select_option("#id_a", str(snapshot_id))
    with page.expect_navigation() as navigation:
        page.click("#compare-form button[type=submit]")
    assert navigation.value.status == 200, page.locator("#compare-errors").all_text_contents()
    assert "status=&" in page.url and "tag=&" in page.url  # what a browser sends for "any"
    assert page.locator("#comparison tbody tr[data-pv]").count() >= 1
    screenshot(page, "compare_07_form_submitted")

    # A filter changed on the result, Compare pressed again.
    page.fill("#id_name", pair.setpoint)
    with page.expect_navigation() as navigation:
        page.click("#compare-form button[type=submit]")
    assert navigation.value.status == 200, page.locator("#compare-errors").all_text_contents()
    assert page.locator("#comparison tbody tr[data-pv]").all() and all(
        row.get_attribute("data-pv") == pair.setpoint for row in page.locator("#comparison tbody tr[data-pv]").all()
    )
    screenshot(page, "compare_08_form_filter_changed")
