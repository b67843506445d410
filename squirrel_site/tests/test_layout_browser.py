"""Every page fits the screen: no horizontal overflow at 1400 px; 40 snapshot, compare (two-way and
N-way) and live rows at 1920x1080.

A person logs in, takes a snapshot with the form, opens it, previews and confirms a restore, then
follows Compare with live (and adds a column: N-way), each entry of the navigation (Compare, Live,
PV sets, Drift, Restores, Jobs, API, Admin) and every change list the admin index links to, by
clicking. Each page is measured at 1400 and 1920 px: neither the page nor any box of it that
scrolls or clips (the admin wraps its result tables in one) may be wider than it shows; text cut
on purpose with an ellipsis (a title holds all of it) or moved out of an icon button (the admin's)
is allowed. Screenshots of every page at both widths go to test-artifacts/screenshots/layout/.
"""

import shutil

import pytest
from django.db import connection

from snapshots.models import SnapshotValue
from squirrel_site.testing.site import SCREENSHOTS, log_in, take_snapshot

pytestmark = [pytest.mark.browser, pytest.mark.ioc, pytest.mark.worker]

LAYOUT_SHOTS = SCREENSHOTS / "layout"
WIDTHS = (1400, 1920)
HEIGHT = 1080
MIN_ROWS_ON_SCREEN = 40
# Admin change lists whose first row's page is checked too.
CHANGE_FORMS = {"/admin/pvs/pv/", "/admin/snapshots/snapshot/", "/admin/snapshots/restore/"}

# What overflows horizontally: the page itself, and every box that scrolls or clips its content.
OVERFLOW_JS = """() => {
  const found = [];
  const root = document.scrollingElement;
  if (root.scrollWidth > root.clientWidth) found.push(`the page: ${root.scrollWidth} > ${root.clientWidth} px`);
  for (const el of document.body.querySelectorAll("*")) {
    const style = getComputedStyle(el);
    if (!["auto", "scroll", "hidden"].includes(style.overflowX) || el.clientWidth <= 1) continue;  // (visually hidden)
    if (style.textOverflow === "ellipsis" || ["SELECT", "TEXTAREA", "INPUT"].includes(el.tagName)) continue;
    if (parseFloat(style.textIndent) < 0) continue;  // text moved out on purpose: an icon button
    if (el.scrollWidth > el.clientWidth + 1) {
      const name = el.id ? `#${el.id}` : `${el.tagName.toLowerCase()}.${[...el.classList].join(".")}`;
      found.push(`${name}: ${el.scrollWidth} > ${el.clientWidth} px`);
    }
  }
  return found;
}"""

# Rows of a table wholly inside the window, as a person sees them without scrolling.
ROWS_ON_SCREEN_JS = """(selector) => [...document.querySelectorAll(selector)].filter((row) => {
  const box = row.getBoundingClientRect();
  return box.height > 0 && box.top >= 0 && box.bottom <= window.innerHeight;
}).length"""


class Layout:
    """Measures and photographs each page at every width; collects what overflows."""

    def __init__(self, page):
        self.page, self.overflows, self.names = page, {}, []
        shutil.rmtree(LAYOUT_SHOTS, ignore_errors=True)  # this run's pages only
        LAYOUT_SHOTS.mkdir(parents=True)

    def check(self, name: str) -> None:
        self.page.wait_for_load_state("load")
        self.names.append(name)
        for width in WIDTHS:
            self.page.set_viewport_size({"width": width, "height": HEIGHT})
            found = self.page.evaluate(OVERFLOW_JS)
            if found and width == min(WIDTHS):
                self.overflows[f"{name} ({self.page.url})"] = found
            self.page.screenshot(path=LAYOUT_SHOTS / f"{len(self.names):02d}_{name}_{width}.png", full_page=True)
        self.page.set_viewport_size({"width": max(WIDTHS), "height": HEIGHT})

    def rows_on_screen(self, selector: str) -> int:
        self.page.set_viewport_size({"width": 1920, "height": 1080})
        self.page.evaluate("() => window.scrollTo(0, 0)")
        return self.page.evaluate(ROWS_ON_SCREEN_JS, selector)


# The CS-Studio colours squirrel.css gives each severity's cell (rgb as the browser reports it).
ALARM_COLOURS = {
    "alarm-minor": "rgb(255, 196, 0)",
    "alarm-major": "rgb(224, 0, 0)",
    "alarm-invalid": "rgb(209, 0, 209)",
    "alarm-disconnected": "rgb(125, 133, 142)",
}


def as_if_in_alarm_when_saved(snapshot_id: int) -> dict[str, str]:
    """The first four values of the snapshot as the IOC would have reported PVs in alarm (MINOR,
    MAJOR, INVALID) and one disconnected, at the time it was taken; {PV: alarm class}. (The test's
    IOC keeps its PVs out of alarm.) The connection is closed after, as in test_browser.py."""
    names = list(SnapshotValue.objects.filter(snapshot_id=snapshot_id).order_by("pv_name")[:4].values_list("pv_name"))
    classes = {}
    for (name,), severity, alarm in zip(names, (1, 2, 3, None), ALARM_COLOURS, strict=True):
        values = SnapshotValue.objects.filter(snapshot_id=snapshot_id, pv_name=name)
        if severity is None:
            values.update(
                connected=False,
                reason="timeout",
                severity=None,
                value_type="none",
                setpoint_num=None,
                setpoint_str=None,
                setpoint_array=None,
            )
        else:
            values.update(severity=severity, status=3)
        classes[name] = alarm
    connection.close()
    return classes


def click_nav(page, label: str) -> None:
    with page.expect_navigation():
        page.click(f'nav.mainnav a:text-is("{label}")')


def test_no_page_overflows_at_1400_px_and_the_tables_show_40_rows(site, browser_page, sim_ioc_registry):
    page = browser_page
    layout = Layout(page)
    page.goto(f"{site}/")  # the site's address, as a person types it: the login page
    layout.check("login")
    log_in(page, site)
    snapshot_id = take_snapshot(page, site, "Layout: every page")

    alarms = as_if_in_alarm_when_saved(snapshot_id)
    click_nav(page, "Snapshots")
    layout.check("snapshot_list")
    with page.expect_navigation():
        page.click(f'#snapshots a[href="/snapshots/{snapshot_id}/"]')
    page.wait_for_function("() => document.querySelector('#values [data-live-address]').textContent !== ''")
    layout.check("snapshot_page")
    rows = layout.rows_on_screen("#values tbody tr")
    assert rows >= MIN_ROWS_ON_SCREEN, f"{rows} snapshot rows on a 1920x1080 screen"
    for name, alarm in alarms.items():
        cell = page.locator(f'tr[data-pv="{name}"] span.{alarm}')
        assert cell.evaluate("el => getComputedStyle(el).backgroundColor") == ALARM_COLOURS[alarm], name
    assert "NO_ALARM" not in page.locator("#values").text_content()
    # The header stays on screen while the rows scroll under it.
    page.mouse.wheel(0, 1500)
    page.wait_for_function("() => window.scrollY > 1000")
    assert page.evaluate("() => document.querySelector('#values thead th').getBoundingClientRect().top") == 0

    page.check("#id_include_unchanged")  # the IOC holds the saved values: write them again
    page.click("#restore-all")
    page.wait_for_url(f"{site}/restores/previews/*/")
    layout.check("restore_preview")
    assert page.locator("#stage-legend").is_visible()
    page.click("#confirm-restore")
    page.wait_for_url(f"{site}/restores/*/", timeout=60_000)
    page.wait_for_function("() => !document.querySelector('[data-job-id]')", timeout=60_000)
    layout.check("restore")

    with page.expect_navigation():
        page.click(f'dl.facts a[href="/snapshots/{snapshot_id}/"]')
    with page.expect_navigation():
        page.click("text=Compare with live")
    layout.check("compare_with_live")
    rows = layout.rows_on_screen("#comparison tbody tr")
    assert rows >= MIN_ROWS_ON_SCREEN, f"{rows} compare rows on a 1920x1080 screen"
    # N-way: the snapshot against the live values and the restore's undo point, side by side.
    page.click("#add-column")
    undo_point = page.locator("#id_b_2 option", has_text="Before restore").first.get_attribute("value")
    page.select_option("#id_b_2", undo_point)
    with page.expect_navigation():
        page.click("#compare-form button[type=submit]")
    assert page.locator("table.nway").is_visible()
    layout.check("compare_nway")
    rows = layout.rows_on_screen("#comparison tbody tr")
    assert rows >= MIN_ROWS_ON_SCREEN, f"{rows} N-way compare rows on a 1920x1080 screen"
    for label in ("Compare", "Live", "PV sets", "Drift", "Restores", "Jobs", "API"):
        click_nav(page, label)
        layout.check(label.lower().replace(" ", "_"))
        if label == "Live":
            rows = layout.rows_on_screen("#live-pvs tbody tr")
            assert rows >= MIN_ROWS_ON_SCREEN, f"{rows} live rows on a 1920x1080 screen"
    with page.expect_navigation():
        page.go_back()  # the API docs have no nav of their own

    click_nav(page, "Admin")
    layout.check("admin_index")
    changelists = page.eval_on_selector_all("#content-main th[scope=row] a", "links => links.map(a => a.href)")
    assert len(changelists) >= 10, changelists
    for url in changelists:
        path = url.removeprefix(site)
        with page.expect_navigation():
            page.click(f'#content-main th[scope=row] a[href="{path}"]')
        layout.check("admin" + path.removeprefix("/admin").replace("/", "_").rstrip("_"))
        if path in CHANGE_FORMS:  # and one row's page, from its link in the list
            with page.expect_navigation():
                page.locator("#result_list tbody tr a").first.click()
            layout.check("admin" + path.removeprefix("/admin").replace("/", "_") + "change")
            with page.expect_navigation():
                page.go_back()
        with page.expect_navigation():
            page.go_back()

    assert not layout.overflows, "\n".join(f"{page}: {', '.join(found)}" for page, found in layout.overflows.items())
