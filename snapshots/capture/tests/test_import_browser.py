"""The snapshot list's "Import a save file" panel in Debian's chromium (Playwright): a broken
autosave file gives its problems with file:line under the form, a good one leads, through the
message's link, to its snapshot."""

import time

import pytest

from pvs import sim
from snapshots.models import Snapshot
from squirrel_site.testing.site import log_in, screenshot, submit

pytestmark = [pytest.mark.browser, pytest.mark.ioc, pytest.mark.worker]


def test_import_an_autosave_file_from_the_snapshot_list_and_follow_the_link(
    site, browser_page, sim_ioc_registry, tmp_path
):
    page = browser_page
    values = [(pv.setpoint, pv.value) for pv in sim_ioc_registry.pvs[:12]]  # as the IOC's autosave writes them
    good = tmp_path / "ioc.sav"
    good.write_text(sim.autosave_text([*values, ("OLD:IOC:GONE", 3.5)], time.time()))
    cut = tmp_path / "cut.sav"
    cut.write_text(good.read_text().replace("<END>\n", ""))
    log_in(page, site)

    page.click("nav.mainnav >> text=Snapshots")
    page.click("#import-snapshot summary")
    page.set_input_files("#id_import-file", str(cut))
    submit(page, "#import-snapshot form")
    errors = page.locator("#import-snapshot .errorlist").text_content()
    assert "cut.sav:14: The file does not end with <END>" in errors
    assert not Snapshot.objects.filter(origin="imported").exists()
    screenshot(page, "60_import_save_file_refused")

    page.set_input_files("#id_import-file", str(good))
    page.fill("#id_import-title", "IOC autosave")
    submit(page, "#import-snapshot form")
    assert page.url == f"{site}/snapshots/"
    snapshot = Snapshot.objects.get(origin="imported")
    message = page.locator(".messages").text_content()
    assert "Imported 13 values as snapshot “IOC autosave”: 1 unknown PV (OLD:IOC:GONE)" in message
    screenshot(page, "61_import_save_file_done")
    with page.expect_navigation():
        page.click(".messages a")
    assert page.url == f"{site}/snapshots/{snapshot.pk}/"
    assert "IOC autosave" in page.locator("h1").text_content()
    assert (
        page.locator("a", has_text="autosave .sav")
        .get_attribute("href")
        .endswith(f"/snapshots/{snapshot.pk}/export/?format=sav")
    )
    screenshot(page, "62_imported_snapshot")
