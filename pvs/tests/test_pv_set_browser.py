"""PV sets in Debian's chromium, against the whole system on loopback, by clicking: create a set on
its page, take a snapshot of it, restore only its PVs, compare only its PVs. Screenshots:
test-artifacts/screenshots/pv_sets_*."""

import pytest

from pvs import sim
from pvs.models import PVSet
from snapshots.models import Snapshot
from squirrel_site.testing.ioc import caget_many
from squirrel_site.testing.site import log_in, screenshot, take_snapshot

pytestmark = [pytest.mark.browser, pytest.mark.ioc, pytest.mark.worker]


def test_create_a_set_take_a_snapshot_of_it_and_restore_only_its_pvs(site, browser_page, sim_ioc_registry, put_on_ioc):
    page = browser_page
    pairs = sim_ioc_registry.of_kind(sim.PAIR)
    in_set, outside = pairs[:3], pairs[3]
    log_in(page, site)
    everything_id = take_snapshot(page, site, "Browser PV sets: everything")

    # Create the set on its page, from the nav, with a preview of its size first.
    page.click("nav.mainnav >> text=PV sets")
    page.click("#new-pv-set")
    page.fill("#id_name", "Three profile monitors")
    page.fill("#id_description", "Chosen by hand")
    page.fill("#id_pv_list", "\n".join(pv.setpoint for pv in in_set))
    page.click("#preview-pv-set")
    assert "holds 3 PVs (not saved yet)" in page.locator("#pv-set-preview").text_content()
    screenshot(page, "pv_sets_01_form_preview")
    page.click("#pv-set-form button.primary")
    page.wait_for_url(f"{site}/pv-sets/*/")
    assert page.locator("#resolved-count").text_content().strip() == "3"
    assert page.locator("#pv-set-pvs td.address").first.text_content().strip() in {pv.setpoint for pv in in_set}
    screenshot(page, "pv_sets_02_set_page")
    pv_set = PVSet.objects.get(name="Three profile monitors")
    # The set's pages fit 1400 and 1920 px without horizontal scrolling.
    for width in (1400, 1920):
        page.set_viewport_size({"width": width, "height": 950})
        for name, link in (("list", "nav.mainnav >> text=PV sets"), ("set", "#pv-sets a"), ("edit", "#edit-pv-set")):
            page.click(link)
            page.wait_for_load_state()
            assert page.evaluate("() => document.documentElement.scrollWidth <= document.documentElement.clientWidth")
            screenshot(page, f"pv_sets_{name}_{width}")
    page.set_viewport_size({"width": 1500, "height": 950})

    # Take a snapshot of the set from the snapshot list's form.
    page.click("nav.mainnav >> text=Snapshots")
    page.click("#take-snapshot summary")
    page.fill("#id_take-title", "Browser PV sets: the set")
    page.select_option("#id_take-mode", "cache")
    page.select_option("#id_take-pv_set", label="Three profile monitors")
    screenshot(page, "pv_sets_03_take_form")
    page.click("#take-snapshot button[type=submit]")
    page.wait_for_url(f"{site}/snapshots/*/", timeout=60_000)
    of_set = Snapshot.objects.get(pk=int(page.url.rstrip("/").rsplit("/", 1)[1]))
    assert sorted(of_set.values.values_list("pv_name", flat=True)) == sorted(pv.setpoint for pv in in_set)

    # Change a PV of the set and one outside it; restore the whole snapshot, only the set's PVs.
    saved = caget_many([in_set[0].setpoint, outside.setpoint])
    put_on_ioc({in_set[0].setpoint: saved[in_set[0].setpoint] + 2.0, outside.setpoint: saved[outside.setpoint] + 2.0})
    page.goto(f"{site}/snapshots/")
    page.click("#snapshots >> text=Browser PV sets: everything")
    page.wait_for_url(f"{site}/snapshots/{everything_id}/")
    page.select_option("#id_pv_set", label=pv_set.name)
    page.click("#restore-all")
    page.wait_for_url(f"{site}/restores/previews/*/")
    assert "To write (1)" in page.locator("body").text_content()
    shown = set(page.locator("#preview-items td.address").all_text_contents())
    assert in_set[0].setpoint in shown and outside.setpoint not in shown
    screenshot(page, "pv_sets_04_restore_preview")
    page.click("#confirm-restore")
    page.wait_for_url(f"{site}/restores/*/", timeout=60_000)
    assert page.locator("#restore-status").text_content().startswith("Succeeded")
    now = caget_many([in_set[0].setpoint, outside.setpoint])
    assert now[in_set[0].setpoint] == pytest.approx(saved[in_set[0].setpoint], abs=in_set[0].abs_tolerance)
    assert now[outside.setpoint] == pytest.approx(saved[outside.setpoint] + 2.0, abs=outside.abs_tolerance)
    screenshot(page, "pv_sets_05_restored")

    # Compare the whole snapshot with live values, only the PVs of the set, from the compare form.
    page.click("nav.mainnav >> text=Compare")
    page.select_option("#id_a", str(everything_id))
    page.select_option("#id_pv_set", label=pv_set.name)
    page.click("form button.primary:has-text('Compare')")
    page.wait_for_url(f"{site}/compare/?*")
    rows = page.locator("#comparison tbody tr[data-pv]")
    rows.first.wait_for()
    assert sorted(rows.evaluate_all("rows => rows.map(row => row.dataset.pv)")) == sorted(pv.setpoint for pv in in_set)
    assert page.locator("#id_pv_set option:checked").text_content() == pv_set.name
    screenshot(page, "pv_sets_06_compare")
