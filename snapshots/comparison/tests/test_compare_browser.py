"""The compare and drift pages in Debian's chromium, against the whole system on loopback.

The system (daphne, worker, monitor, simulated IOC) and the browser are squirrel_site's browser
test fixtures; screenshots go to test-artifacts/screenshots/ (names starting with "compare_").
"""

import pytest

from pvs import sim
from squirrel_site.testing.ioc import caget_many
from squirrel_site.testing.site import (
    LIVE_CHANGE_LIMIT_MS,
    SCREENSHOTS,
    compare_in_form,
    live_cell_latency_ms,
    log_in,
    screenshot,
    submit,
    take_snapshot,
    wait_for_live,
)
from squirrel_site.testing.snapshots import nt_table

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
    compare_in_form(page, site, before_id, "live", device=pair.device)
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
    live_delta = row.locator("[data-live-delta]").text_content()
    assert live_delta.startswith("+5.000") and live_delta.endswith(f" {pair.egu}")  # signed, with units
    screenshot(page, "compare_02_live_change")

    # Compared again, differences only, every device: it counts as a difference; the CSV holds
    # the rows shown.
    page.fill("#id_device", "")
    page.check("#id_differences_only")
    submit(page, "#compare-form")
    assert page.locator(f'tr[data-pv="{pair.setpoint}"]').get_attribute("data-status") == "out_of_tolerance"
    with page.expect_download() as download:
        page.click("#csv-export")
    assert pair.setpoint in open(download.value.path(), encoding="utf-8").read()
    screenshot(page, "compare_03_live_differences")

    # Snapshot against snapshot, differences only, sorted by Δ descending (the header clicked twice).
    after_id = take_snapshot(page, site, "Browser compare: after")
    compare_in_form(page, site, before_id, after_id, differences_only=True)
    page.click("#comparison thead >> text=Δ B − A")
    page.wait_for_url("**sort=delta*")
    page.click("#comparison thead >> text=Δ B − A")
    page.wait_for_url("**sort=-delta*")
    changed = page.locator(f'tr[data-pv="{pair.setpoint}"]')
    assert changed.get_attribute("data-status") == "out_of_tolerance"
    assert changed.locator("td.delta").text_content().strip().startswith("+5.000")
    screenshot(page, "compare_04_snapshots")

    # Drift against the first snapshot, and a click through to the rows of one tag.
    page.click("nav.mainnav >> text=Drift")
    page.wait_for_url(f"{site}/drift/")
    page.select_option("#id_snapshot", str(before_id))
    submit(page, "#drift-form")
    total = page.locator('tr[data-line="total-0"] td').all_text_contents()
    assert int(total[2]) >= 1  # out of tolerance
    screenshot(page, "compare_05_drift")
    out_of_tolerance_links = page.locator("tr.drift-tag.out-of-tolerance td:nth-child(3) a")
    out_of_tolerance_links.first.click()
    page.wait_for_url(f"{site}/compare/?*")
    assert page.locator("#comparison tbody tr[data-status='out_of_tolerance']").count() >= 1
    screenshot(page, "compare_06_drift_click_through")


def test_a_table_pv_shows_as_a_table_and_says_which_rows_differ(site, browser_page, make_snapshot, make_pvs):
    """Two snapshots holding an NTTable (pvAccess) whose setpoint column changed in one row beyond
    the PV's tolerance and in another within it, compared through the page's form."""
    page = browser_page
    name = "pva://BROWSER:MAGNETS"

    def magnets(setpoint):
        return nt_table(
            {
                "device": ("as", ["Q1", "Q2", "Q3", "Q4"]),
                "setpoint": ("ad", setpoint),
                "enabled": ("a?", [True, True, False, True]),
            }
        )

    make_pvs(name, abs_tolerance=0.01, device="BROWSER")
    a = make_snapshot("Browser table: before", {name: magnets([1.0, 2.0, 3.0, 4.0])}, precision=2)
    b = make_snapshot("Browser table: after", {name: magnets([1.0, 2.005, 3.5, 4.0])}, precision=2)
    log_in(page, site)
    compare_in_form(page, site, a.id, b.id, device="BROWSER")
    row = page.locator(f'tr[data-pv="{name}"]')
    assert row.get_attribute("data-status") == "out_of_tolerance"
    assert row.locator("td.delta > span").first.text_content().strip() == "column `setpoint`: row 2 differs"
    cells = row.locator("td.value")
    assert (
        cells.nth(0)
        .text_content()
        .strip()
        .startswith('table 4×3: device ["Q1", "Q2", "Q3", "Q4"], setpoint [1, 2, 3, 4]')
    )
    assert cells.nth(1).text_content().strip().startswith("table 4×3:") and "NTTable" not in row.text_content()
    # The two tables side by side, the differing cell marked; the one within tolerance is not.
    row.locator("details.table summary").click()
    differing = row.locator("details.table td.out-of-tolerance")
    assert differing.count() == 1 and differing.text_content() == "3 → 3.5"
    # Row 1: 2.005 is within 0.01 of 2, shown and not marked.
    assert row.locator("details.table tr").nth(2).locator("td").nth(2).text_content() == "2 → 2.005"
    screenshot(page, "compare_09_table")


def test_a_table_pv_in_three_snapshots_shows_its_differing_columns_side_by_side(
    site, browser_page, make_snapshot, make_pvs
):
    """An NTTable (pvAccess) saved in three snapshots, compared N-way through the page's form: under
    its row, each differing table column with A's and every column's elements side by side."""
    page = browser_page
    name = "pva://BROWSER:NWAY:MAGNETS"

    def magnets(setpoint, device=("Q1", "Q2", "Q3", "Q4")):
        return nt_table({"device": ("as", list(device)), "setpoint": ("ad", setpoint), "count": ("ai", [1, 2, 3, 4])})

    make_pvs(name, abs_tolerance=0.01, device="BROWSERNWAY")
    a = make_snapshot("N-way table: A", {name: magnets([1.0, 2.0, 3.0, 4.0])})
    b = make_snapshot("N-way table: B", {name: magnets([1.0, 2.005, 3.5, 4.0])})
    c = make_snapshot("N-way table: C", {name: magnets([1.5, 2.0, 3.0, 4.0], ("Q1", "Q2", "Q3", "Q9"))})
    log_in(page, site)
    page.click("nav.mainnav >> text=Compare")
    page.wait_for_url(f"{site}/compare/")
    page.select_option("#id_a", str(a.id))
    page.select_option("#id_b", str(b.id))
    page.click("#add-column")
    page.select_option("#id_b_2", str(c.id))
    page.fill("#id_device", "BROWSERNWAY")
    with page.expect_navigation() as navigation:
        page.click("#compare-form button[type=submit]")
    assert navigation.value.status == 200, page.locator("#compare-errors").all_text_contents()
    row = page.locator(f'table.nway tr[data-pv="{name}"]')
    assert row.get_attribute("data-statuses") == "out_of_tolerance out_of_tolerance"
    columns = page.locator(f'tr.table-columns[data-table-of="{name}"] table.table-column')
    assert [columns.nth(i).get_attribute("data-column") for i in range(columns.count())] == ["device", "setpoint"]
    setpoint = page.locator(f'tr.table-columns[data-table-of="{name}"] table[data-column="setpoint"]')
    assert setpoint.locator("tr").nth(0).locator("th").all_text_contents() == [
        "row",
        f"A #{a.id}",
        f"#{b.id}",
        f"#{c.id}",
    ]
    lines = [setpoint.locator("tr").nth(i).locator("td").all_text_contents() for i in (1, 2)]
    assert lines == [["0", "1", "1", "1.5"], ["2", "3", "3.5", "3"]]  # row 1 is within tolerance in B
    marked = setpoint.locator("td.out-of-tolerance").all_text_contents()
    assert marked == ["1.5", "3.5"]
    screenshot(page, "compare_10_nway_table")


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

    # Sorted by Δ, then a second column added: several columns sort by name, and the form says so
    # by dropping the two-way sort rather than failing.
    page.click("#comparison thead >> text=Δ B − A")
    page.wait_for_url("**sort=delta*")
    page.click("#add-column")
    page.select_option("#id_b_2", str(snapshot_id))
    with page.expect_navigation() as navigation:
        page.click("#compare-form button[type=submit]")
    assert navigation.value.status == 200, page.locator("#compare-errors").all_text_contents()
    assert page.locator("table.nway tbody tr[data-pv]").count() == 1


def test_n_way_comparison_by_clicking(site, browser_page, sim_ioc_registry, put_on_ioc):
    """Three snapshots and the live values side by side against a reference, all chosen in the
    form; differences only; the CSV downloaded; a PV's link followed to its live values."""
    page = browser_page
    pairs = sim_ioc_registry.of_kind(sim.PAIR)
    changed, steady = pairs[7], pairs[8]
    log_in(page, site)
    first = take_snapshot(page, site, "N-way: first")
    second = take_snapshot(page, site, "N-way: second")
    target = caget_many([changed.setpoint])[changed.setpoint] + 3.0
    put_on_ioc({changed.setpoint: target})
    # The monitor has the new value before the cache snapshot: the live page, searched for the PV.
    page.click("nav.mainnav >> text=Live")
    page.wait_for_url(f"{site}/live/")
    page.fill("#id_search", changed.setpoint)
    submit(page)
    wait_for_live(page, changed.setpoint, f"parseFloat(text) > {target - 0.5}")
    third = take_snapshot(page, site, "N-way: third")

    page.click("nav.mainnav >> text=Compare")
    page.select_option("#id_a", str(first))
    page.select_option("#id_b", str(second))
    page.click("#add-column")
    page.select_option("#id_b_2", str(third))
    page.click("#add-column")
    page.select_option("#id_b_3", "live")
    screenshot(page, "compare_09_nway_form")
    with page.expect_navigation() as navigation:
        page.click("#compare-form button[type=submit]")
    assert navigation.value.status == 200, page.locator("#compare-errors").all_text_contents()
    table = page.locator("table.nway")
    assert table.get_attribute("data-columns") == "3"
    row = table.locator(f'tr[data-pv="{changed.setpoint}"]')
    statuses = row.get_attribute("data-statuses").split()
    assert statuses[0] in ("equal", "within") and statuses[1:] == ["out_of_tolerance", "out_of_tolerance"]
    assert row.locator("td.delta").nth(1).text_content().strip().startswith("+3.0")

    # The live column follows the IOC as the two-way page's does: its value, Δ (signed, in A's
    # units) and highlight, recomputed in the browser; the snapshot columns stay as they were.
    live_cell = f'table.nway tr[data-pv="{changed.setpoint}"] [data-live-address="{changed.setpoint}"]'
    page.wait_for_function(f"() => document.querySelector('{live_cell}').dataset.connected === 'true'")
    highlighted = row.locator("td[data-live-highlight].out-of-tolerance")
    assert highlighted.count() == 2  # the live value and its Δ, 3 away from A
    put_on_ioc({changed.setpoint: target - 3.0})  # back to A's value
    page.wait_for_function(
        f"() => !document.querySelector('{live_cell}').closest('td').classList.contains('out-of-tolerance')"
    )
    assert highlighted.count() == 0 and abs(float(row.locator("[data-live-delta]").text_content().split()[0])) < 1e-9
    latency_ms = live_cell_latency_ms(page, put_on_ioc, changed.setpoint, target + 2.0)
    assert latency_ms <= LIVE_CHANGE_LIMIT_MS, f"the N-way live cell changed {latency_ms:.0f} ms after the put"
    page.wait_for_function(
        f"() => document.querySelector('{live_cell}').closest('td').classList.contains('out-of-tolerance')"
    )
    live_delta = row.locator("[data-live-delta]").text_content()
    assert live_delta.startswith("+5.0") and live_delta.endswith(f" {changed.egu}"), live_delta
    assert highlighted.count() == 2 and row.locator("td.delta").nth(1).text_content().strip().startswith("+3.0")
    assert row.get_attribute("data-statuses").split() == statuses  # as of loading the page
    page.set_viewport_size({"width": 1400, "height": 1080})
    screenshot(page, "compare_14_nway_live_change_1400")
    target += 2.0  # what the IOC holds now
    for width in (1400, 1920):
        page.set_viewport_size({"width": width, "height": 1080})
        overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"the page overflows by {overflow} px at {width} px"
        screenshot(page, f"compare_10_nway_{width}")

    # Up to 8 columns: the button stops there; the wide table scrolls inside its box, not the page.
    page.set_viewport_size({"width": 1400, "height": 1080})
    for number in range(4, 9):
        page.click("#add-column")
        page.select_option(f"#id_b_{number}", str(first if number % 2 else third))
    assert page.locator("#add-column").is_disabled()
    with page.expect_navigation() as navigation:
        page.click("#compare-form button[type=submit]")
    assert navigation.value.status == 200, page.locator("#compare-errors").all_text_contents()
    assert page.locator("table.nway").get_attribute("data-columns") == "8"
    overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page overflows by {overflow} px with 8 columns"
    page.screenshot(path=SCREENSHOTS / "compare_13_nway_8_columns_1400.png")  # the first screen only
    for number in range(8, 3, -1):  # back to three columns, with the remove buttons
        page.click(f'#compare-form button[aria-label="Remove column {number}"]')
    assert page.locator("#compare-form select[name=b]").count() == 3

    # Differences only, by ticking the box and pressing Compare: the steady PV goes, the changed stays.
    assert table.locator(f'tr[data-pv="{steady.setpoint}"]').count() == 1
    page.check("#id_differences_only")
    with page.expect_navigation():
        page.click("#compare-form button[type=submit]")
    assert page.locator("#id_b_3").input_value() == "live"  # the columns stay chosen
    assert page.locator(f'table.nway tr[data-pv="{changed.setpoint}"]').count() == 1
    assert page.locator(f'table.nway tr[data-pv="{steady.setpoint}"]').count() == 0
    screenshot(page, "compare_11_nway_differences")

    with page.expect_download() as download:
        page.click("#csv-export")
    text = open(download.value.path(), encoding="utf-8").read()
    assert text.splitlines()[0].startswith(f"pv_name,device,reference #{first},reference readback,#{second},")
    assert changed.setpoint in text and steady.setpoint not in text

    page.click(f'table.nway tr[data-pv="{changed.setpoint}"] td.address a')
    page.wait_for_url(f"{site}/live/?*")
    wait_for_live(page, changed.setpoint, f"parseFloat(text) > {target - 0.5}")
    screenshot(page, "compare_12_nway_pv_link")
