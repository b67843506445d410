"""Addresses with their protocol in Debian's chromium, by clicking: add a pvAccess PV in the admin
typing the scheme in capitals (stored as pva://), find it with the admin's protocol filter, then
choose Protocol = pvAccess in the live page's filter form. Screenshots:
test-artifacts/screenshots/protocol_*."""

import pytest

from pvs.models import PV
from squirrel_site.testing.site import log_in, screenshot, submit

pytestmark = [pytest.mark.browser, pytest.mark.ioc, pytest.mark.worker]


def test_add_a_pvaccess_pv_in_the_admin_and_filter_both_lists_by_protocol(site, browser_page):
    page = browser_page
    PV.objects.create(setpoint_address="pva://SR:PVA:ORBIT:group", device="ORBIT")
    PV.objects.create(setpoint_address="SR:MIX:Q1:I_SP", readback_address="pva://SR:MIX:Q1:I", device="Q1")
    log_in(page, site)

    # The admin's add form takes the scheme in any case and saves the registry's spelling.
    page.click("nav.mainnav >> text=Admin")
    page.goto(f"{site}/admin/pvs/pv/add/")
    page.fill("#id_setpoint_address", "PVA://SR:PVA:TBL")
    page.fill("#id_readback_address", "ca://SR:PVA:TBL:RB")
    page.fill("#id_device", "TBL")
    screenshot(page, "protocol_01_admin_add")
    page.click("input[name=_save]")
    page.wait_for_url(f"{site}/admin/pvs/pv/")
    pv = PV.objects.get(device="TBL")
    assert (pv.setpoint_address, pv.readback_address) == ("pva://SR:PVA:TBL", "SR:PVA:TBL:RB")

    # A pvAccess address with a space is refused on the form, saying why.
    page.goto(f"{site}/admin/pvs/pv/add/")
    page.fill("#id_setpoint_address", "pva://SR:PVA BAD")
    page.click("input[name=_save]")
    assert "The address contains whitespace." in page.locator(".errorlist").first.text_content()

    # The admin list's protocol filter and column.
    page.goto(f"{site}/admin/pvs/pv/")
    page.click("#changelist-filter >> text=pvAccess")
    page.wait_for_url("**protocol=pva**")
    rows = page.locator("#result_list tbody tr")
    assert sorted(rows.locator("th.field-setpoint_address").all_text_contents()) == [
        "SR:MIX:Q1:I_SP",
        "pva://SR:PVA:ORBIT:group",
        "pva://SR:PVA:TBL",
    ]
    protocols = dict(
        zip(
            rows.locator("th.field-setpoint_address").all_text_contents(),
            rows.locator("td.field-protocol").all_text_contents(),
            strict=True,
        )
    )
    assert protocols == {
        "SR:MIX:Q1:I_SP": "CA (readback PVA)",
        "pva://SR:PVA:ORBIT:group": "PVA",
        "pva://SR:PVA:TBL": "PVA (readback CA)",
    }
    screenshot(page, "protocol_02_admin_filtered")

    # The live page: choose Protocol = pvAccess in its form and press Filter.
    page.goto(f"{site}/snapshots/")
    page.click("nav.mainnav >> text=Live")
    page.select_option("#id_protocol", label="pvAccess")
    submit(page)
    assert "protocol=pva" in page.url
    shown = page.locator("#live-pvs tbody tr").evaluate_all("rows => rows.map(r => r.dataset.pv)")
    assert shown == ["SR:MIX:Q1:I_SP", "pva://SR:PVA:ORBIT:group", "pva://SR:PVA:TBL"]
    mixed = page.locator('tr[data-pv="SR:MIX:Q1:I_SP"] .badge.protocol')
    assert mixed.all_text_contents() == ["CA", "PVA"]
    assert mixed.nth(1).get_attribute("title") == "Readback over pvAccess"
    assert page.locator('tr[data-pv="pva://SR:PVA:ORBIT:group"] .badge.protocol').all_text_contents() == ["PVA"]
    assert page.locator("#id_protocol").input_value() == "pva"
    # The page still fits 1400 px without scrolling sideways.
    page.set_viewport_size({"width": 1400, "height": 950})
    assert page.evaluate("() => document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    screenshot(page, "protocol_03_live_pvaccess")

    # And Channel Access among the SR: PVs: the mixed one, the table (its readback), not the group.
    page.select_option("#id_protocol", label="Channel Access")
    page.fill("#id_search", "SR:")
    submit(page)
    shown = page.locator("#live-pvs tbody tr").evaluate_all("rows => rows.map(r => r.dataset.pv)")
    assert shown == ["SR:MIX:Q1:I_SP", "pva://SR:PVA:TBL"]
