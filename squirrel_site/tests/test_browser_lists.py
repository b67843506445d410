"""Operator lists and snapshot edits in Debian's chromium (Playwright), clicking as a person does:
edit a snapshot on its page (golden included), restore, then find the restore and its jobs from the
nav, filter them with the forms (dates typed as ISO, 24-hour), show the hidden undo point on the
snapshot list; and the admin's registry import applied after its check without choosing the file
again."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from pvs import sim
from snapshots.models import SnapshotTag
from squirrel_site.testing.ioc import caget_many
from squirrel_site.testing.site import SCREENSHOTS, log_in, screenshot, take_snapshot

pytestmark = [pytest.mark.browser, pytest.mark.ioc, pytest.mark.worker]


def at_both_widths(page, name: str) -> None:
    """Screenshots at 1400 and 1920 px; at neither does the page scroll sideways."""
    size = page.viewport_size
    for width in (1400, 1920):
        page.set_viewport_size({"width": width, "height": 1080})
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{name} is {overflow} px too wide at {width} px"
        screenshot(page, f"{name}_{width}")
    page.set_viewport_size(size)


def rows(page, table: str) -> list[str]:
    return page.locator(f"#{table} tbody tr").all_text_contents()


def test_edit_a_snapshot_restore_it_and_find_the_restore_and_jobs_in_the_lists(
    site, browser_page, sim_ioc_registry, put_on_ioc
):
    page = browser_page
    SnapshotTag.objects.get_or_create(name="weekly")
    # A migration creates golden; a transactional test run earlier in the session may have flushed it.
    SnapshotTag.objects.get_or_create(name="golden", defaults={"protected": True})
    connection.close()  # Playwright's loop makes Django give this thread a connection of its own
    pair = sim_ioc_registry.of_kind(sim.PAIR)[4]
    log_in(page, site)
    snapshot_id = take_snapshot(page, site, "Browser: lists")

    # Edit title, comment and tags in place; the admin may set golden.
    page.click("#edit-snapshot summary")
    page.fill("#id_edit-title", "Browser: lists, reference")
    page.fill("#id_edit-comment", "Tuned for the lists test")
    page.get_by_label("weekly").check()
    page.get_by_label("golden").check()
    page.screenshot(path=SCREENSHOTS / "30_snapshot_edit_form.png")  # the top: the values run on below
    page.click("#save-snapshot")
    page.wait_for_url(f"{site}/snapshots/{snapshot_id}/")
    heading = page.locator("h1").text_content()
    assert "Browser: lists, reference" in heading and "★ golden" in heading
    assert "Tuned for the lists test" in page.locator("dl.facts").text_content()
    page.screenshot(path=SCREENSHOTS / "31_snapshot_edited.png")

    # Restore one changed PV, chosen with the page's filter form.
    put_on_ioc({pair.setpoint: caget_many([pair.setpoint])[pair.setpoint] + 2.0})
    page.fill("#id_name", pair.setpoint)
    page.click("form.filters button[type=submit]")
    page.check(f'tr[data-pv="{pair.setpoint}"] input[name="pv"]')
    page.click("#restore-checked")
    page.wait_for_url(f"{site}/restores/previews/*/")
    page.click("#confirm-restore")
    page.wait_for_url(f"{site}/restores/*/", timeout=60_000)
    restore_url = page.url

    # The restores list, from the nav: who, what, the result; filtered with its form.
    page.click("nav.mainnav >> text=Restores")
    page.wait_for_url(f"{site}/restores/")
    first = page.locator("#restores tbody tr").first
    assert "Browser: lists, reference" in first.text_content() and "admin" in first.text_content()
    assert "Verified: 1" in first.locator("td.results").text_content()
    page.select_option("#id_kind", "undo")
    page.click("form.filters button[type=submit]")
    assert rows(page, "restores") == [rows(page, "restores")[0]] and "No restore matches." in rows(page, "restores")[0]
    page.select_option("#id_kind", "restore")
    page.fill("#id_user", "ADMIN")
    page.click("form.filters button[type=submit]")
    # Dates are typed as ISO days with a 24-hour time, in the configured time zone, never in the
    # browser's locale: a 12-hour US date is refused by the browser, a 13th month by the server.
    now = timezone.localtime()
    assert page.get_attribute("#id_date_from", "placeholder") == "YYYY-MM-DD HH:MM"
    page.fill("#id_date_from", "12/07/2026 2:30 PM")
    assert page.locator("#id_date_from").evaluate("el => el.validity.patternMismatch")
    page.fill("#id_date_from", f"{now:%Y}-13-01 14:30")
    page.click("form.filters button[type=submit]")
    error = page.locator("form.filters .errorlist").text_content()
    assert "Enter a day, YYYY-MM-DD, or a day and a 24-hour time, YYYY-MM-DD HH:MM" in error
    page.fill("#id_date_from", f"{now - timedelta(hours=1):%Y-%m-%d %H:%M}")
    page.fill("#id_date_to", f"{now:%Y-%m-%d %H:%M}")  # until the end of this minute
    page.click("form.filters button[type=submit]")
    assert "Browser: lists, reference" in page.locator("#restores tbody tr").first.text_content()
    assert page.input_value("#id_date_to") == f"{now:%Y-%m-%d %H:%M}"
    at_both_widths(page, "32_restores_list")
    page.fill("#id_date_to", f"{now - timedelta(hours=1):%Y-%m-%d %H:%M}")
    page.click("form.filters button[type=submit]")
    assert "No restore matches." in rows(page, "restores")[0]
    page.fill("#id_date_to", "")
    page.click("form.filters button[type=submit]")
    page.locator("#restores tbody tr").first.locator("td.results a").click()
    page.wait_for_url(restore_url)

    # The jobs list: the snapshot and the restore job, filtered by kind; the result link opens it.
    page.click("nav.mainnav >> text=Jobs")
    page.wait_for_url(f"{site}/jobs/")
    kinds = page.locator("#jobs tbody tr td:nth-child(2)").all_text_contents()
    assert "Take snapshot" in kinds and "Restore" in kinds
    page.select_option("#id_type", "restore")
    page.select_option("#id_status", "succeeded")
    page.fill("#id_date_from", f"{now:%Y-%m-%d}")  # a day alone: from its midnight
    page.click("form.filters button[type=submit]")
    assert set(page.locator("#jobs tbody tr td:nth-child(2)").all_text_contents()) == {"Restore"}
    assert "Executes preview #" in page.locator("#jobs tbody tr").first.text_content()
    at_both_widths(page, "33_jobs_list")
    page.locator("#jobs tbody tr").first.locator("td.result a").click()
    page.wait_for_url(restore_url)

    # The snapshot list hides the restore's undo point until asked.
    page.click("nav.mainnav >> text=Snapshots")
    page.wait_for_url(f"{site}/snapshots/")
    titles = page.locator("#snapshots tbody tr td:first-child a").all_text_contents()
    assert "Browser: lists, reference" in titles and not any(t.startswith("Before restore #") for t in titles)
    assert "1 automatic undo point" in page.locator("#hidden-undo-points").text_content()
    page.check("#id_undo_points")
    page.click("form.filters button[type=submit]")
    titles = page.locator("#snapshots tbody tr td:first-child a").all_text_contents()
    assert any(t.startswith("Before restore #") for t in titles)
    page.uncheck("#id_undo_points")
    page.select_option("#id_origin", "pre_restore")
    page.click("form.filters button[type=submit]")
    titles = page.locator("#snapshots tbody tr td:first-child a").all_text_contents()
    assert titles and all(t.startswith("Before restore #") for t in titles)
    screenshot(page, "34_snapshot_list_undo_points")

    # The nav's API link opens the docs.
    page.click("nav.mainnav >> text=API")
    page.wait_for_url(f"{site}/api/v1/docs/")
    page.wait_for_selector(".opblock")


def test_the_admin_imports_a_checked_registry_file_without_choosing_it_again(site, browser_page, tmp_path):
    page = browser_page
    registry = tmp_path / "browser-registry.csv"
    registry.write_text("Setpoint,Readback,Description\nBROWSER:NEW:SP,BROWSER:NEW:RB,from the browser\n")
    log_in(page, site)
    page.click("nav.mainnav >> text=Admin")
    page.click("text=PVs")  # the PV list from the admin index
    page.click("text=Import PVs")
    page.set_input_files("#id_file", str(registry))
    page.click("input[name=check]")
    assert "Check passed: nothing has been written yet" in page.locator("#import-report").text_content()
    assert page.locator(".import-new").text_content() == "1"
    screenshot(page, "35_admin_import_checked")
    page.click("#apply-checked")
    page.wait_for_url(f"{site}/admin/pvs/pv/")
    assert "Imported browser-registry.csv: 1 new" in page.locator(".messagelist").text_content()
