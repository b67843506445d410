"""The pages in Debian's chromium (Playwright), against the whole system on loopback.

A daphne web server, a Celery worker and the monitor run as subprocesses on the test database
and Redis, next to the simulated IOC; the IOC is changed by an independent pyepics process, as
in snapshots/tests/test_end_to_end.py. Each step saves a screenshot to test-artifacts/screenshots/
for a person to look at.
"""

import urllib.parse
import urllib.request

import pytest
from django.db import connection

from pvs import sim
from pvs.models import PV
from squirrel_site.testing import eventually
from squirrel_site.testing.ioc import caget_many
from squirrel_site.testing.site import (
    LIVE_CHANGE_LIMIT_MS,
    live_cell_latency_ms,
    log_in,
    screenshot,
    submit,
    take_snapshot,
    wait_for_live,
)

pytestmark = [pytest.mark.browser, pytest.mark.ioc, pytest.mark.worker]


def edit_registry(address: str, **changes) -> None:
    """Edit a PV as a curator would, in the middle of a browser session.

    Playwright's sync API runs an event loop in this thread, so Django sees an async context and
    gives it a connection of its own: close it, or the test database cannot be dropped at the end.
    """
    PV.objects.filter(setpoint_address=address).update(**changes)
    connection.close()


def test_snapshot_pages_show_live_values_that_follow_the_ioc(site, browser_page, sim_ioc_registry, put_on_ioc):
    page = browser_page
    pair = sim_ioc_registry.of_kind(sim.PAIR)[0]
    log_in(page, site)

    snapshot_id = take_snapshot(page, site, "Browser: before the change", shot="02_take_snapshot_form")
    page.goto(f"{site}/snapshots/")
    assert "Browser: before the change" in page.locator("#snapshots").text_content()
    screenshot(page, "03_snapshot_list")

    page.click(f'#snapshots a[href="/snapshots/{snapshot_id}/"]')
    page.wait_for_url(f"{site}/snapshots/{snapshot_id}/")
    page.fill("#id_device", pair.device)
    submit(page)
    before = wait_for_live(page, pair.setpoint)
    row = page.locator(f'tr[data-pv="{pair.setpoint}"]')
    assert "out-of-tolerance" not in (row.get_attribute("class") or "")
    screenshot(page, "04_snapshot_detail")

    target = caget_many([pair.setpoint])[pair.setpoint] + 5.0
    latency_ms = live_cell_latency_ms(page, put_on_ioc, pair.setpoint, target)
    after = page.locator(f'[data-live-address="{pair.setpoint}"]').first.text_content()
    assert after != before and after.startswith(f"{target:.{pair.prec}f}"), (before, after)
    assert latency_ms <= LIVE_CHANGE_LIMIT_MS, f"the live cell changed {latency_ms:.0f} ms after the put"
    page.wait_for_function(
        f"() => document.querySelector('tr[data-pv=\"{pair.setpoint}\"]').classList.contains('out-of-tolerance')"
    )
    assert page.locator(f'tr[data-pv="{pair.setpoint}"] [data-live-delta]').text_content().startswith("+5.000")
    screenshot(page, "05_snapshot_detail_live_change")

    page.fill("#id_device", "")
    page.check("#id_out_of_tolerance")
    submit(page)
    assert "out_of_tolerance=on" in page.url
    assert pair.setpoint in page.locator("#values").text_content()
    screenshot(page, "06_snapshot_detail_out_of_tolerance")

    page.click("nav.mainnav >> text=Live")
    page.wait_for_url(f"{site}/live/")
    page.fill("#id_device", pair.device)
    submit(page)
    assert wait_for_live(page, pair.setpoint).startswith(f"{target:.{pair.prec}f}")
    screenshot(page, "07_live_table")


def test_restore_from_the_snapshot_page_select_preview_confirm_results_undo(
    site,
    browser_page,
    sim_ioc_registry,
    put_on_ioc,
):
    page = browser_page
    pair, integer, enum = (sim_ioc_registry.of_kind(kind)[2] for kind in (sim.PAIR, sim.INT, sim.ENUM))
    log_in(page, site)
    snapshot_id = take_snapshot(page, site, "Browser: restore point")
    saved = caget_many([pair.setpoint, integer.setpoint, enum.setpoint])
    put_on_ioc(
        {
            pair.setpoint: saved[pair.setpoint] + 2.0,
            integer.setpoint: saved[integer.setpoint] + 3,
            enum.setpoint: (saved[enum.setpoint] + 1) % len(enum.labels),
        }
    )

    # The out-of-tolerance filter reads the monitor's cache, which takes the puts a moment later:
    # ticked on the snapshot's page and submitted until both rows are listed.
    assert page.url == f"{site}/snapshots/{snapshot_id}/"

    def both_rows_listed() -> bool:
        page.check("#id_out_of_tolerance")
        submit(page)
        return all(page.locator(f'tr[data-pv="{a}"]').count() for a in (pair.setpoint, integer.setpoint))

    eventually(both_rows_listed, 30, interval=0.5, what="the monitor's cache to hold the puts")
    for address in (pair.setpoint, integer.setpoint):
        page.check(f'tr[data-pv="{address}"] input[name="pv"]')
    page.click("#restore-checked")
    page.wait_for_url(f"{site}/restores/previews/*/")
    assert "To write (2)" in page.locator("body").text_content()
    assert {pair.setpoint, integer.setpoint} <= set(page.locator("#preview-items td.address").all_text_contents())
    screenshot(page, "08_restore_preview")

    page.click("#confirm-restore")
    page.wait_for_url(f"{site}/restores/*/", timeout=60_000)  # job page, then the restore when it ends
    assert page.locator("#restore-status").text_content().startswith("Succeeded")
    results = dict(
        zip(
            page.locator("#restore-items td.address").all_text_contents(),
            page.locator("#restore-items td .badge").all_text_contents(),
            strict=False,
        )
    )
    assert results == {pair.setpoint: "Verified", integer.setpoint: "Verified"}
    screenshot(page, "09_restore_results")
    now = caget_many([pair.setpoint, integer.setpoint, enum.setpoint])
    assert now[pair.setpoint] == pytest.approx(saved[pair.setpoint], abs=pair.abs_tolerance)
    assert now[integer.setpoint] == saved[integer.setpoint]
    assert now[enum.setpoint] != saved[enum.setpoint]  # not checked, not restored

    page.click("#undo")
    page.wait_for_url(f"{site}/restores/previews/*/")
    assert "To write (2)" in page.locator("body").text_content()
    screenshot(page, "10_undo_preview")


def test_a_stale_preview_is_refused_on_the_page(site, browser_page, sim_ioc_registry, put_on_ioc):
    page = browser_page
    pair = sim_ioc_registry.of_kind(sim.PAIR)[3]
    log_in(page, site)
    take_snapshot(page, site, "Browser: stale preview")  # ends on the snapshot's page
    put_on_ioc({pair.setpoint: caget_many([pair.setpoint])[pair.setpoint] + 1.0})
    page.fill("#id_name", pair.setpoint)  # on the snapshot's page
    submit(page)
    page.click("#restore-filtered")
    page.wait_for_url(f"{site}/restores/previews/*/")
    edit_registry(pair.setpoint, abs_tolerance=pair.abs_tolerance * 2)
    page.click("#confirm-restore")
    page.wait_for_url(f"{site}/restores/previews/*/")
    assert "were edited or deleted since it was made" in page.locator("#refusal").text_content()
    assert page.locator("#confirm-restore").count() == 0
    screenshot(page, "11_stale_preview_refused")


def test_the_api_docs_page_shows_every_operation_loaded_from_this_server_only(site, browser_page):
    """Swagger UI comes from drf-spectacular-sidecar's static files: nothing is fetched elsewhere."""
    page = browser_page
    hosts = set()
    page.on("request", lambda request: hosts.add(urllib.parse.urlsplit(request.url).netloc))
    log_in(page, site)
    page.goto(f"{site}/api/v1/docs/")
    page.wait_for_selector(".opblock")
    screenshot(page, "20_api_docs")

    schema = page.evaluate("fetch('/api/v1/schema/', {headers: {Accept: 'application/json'}}).then(r => r.json())")
    operations = sum(len(methods) for methods in schema["paths"].values())
    assert page.locator(".opblock").count() == operations > 40
    assert hosts == {urllib.parse.urlsplit(site).netloc}
