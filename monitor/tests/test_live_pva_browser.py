"""pvAccess PVs on the live pages, in chromium, against the whole system (squirrel_site.testing.site)
whose monitor also subscribes the simulated pvAccess server: one PV of every simulated type on the
live table and on a snapshot's page, a put by another client followed live. Screenshots in
test-artifacts/screenshots/ (live_pva, snapshot_pva)."""

import pytest
from django.db import connection

from pvs import sim_pva
from pvs.models import PV
from pvs.protocols import name_of
from squirrel_site.testing.site import log_in, screenshot, take_snapshot, wait_for_live

pytestmark = [pytest.mark.browser, pytest.mark.ioc, pytest.mark.worker]

# Shown once the monitor has the value (not empty, not "never connected" nor "disconnected").
HAS_VALUE = "text.trim() !== '' && !text.includes('connected')"


@pytest.fixture
def pva_site(request, site_processes, pva_server, sim_ioc_registry):
    """The site's URL, its processes reaching the simulated pvAccess server too, with one
    ``pva://`` PV of every simulated type in the registry; {type: address}."""
    site_processes.env.update(pva_server.conf)  # the processes copy this environment when they start
    addresses = {kind: f"pva://{pva_server.of_type(kind).name}" for kind in sim_pva.TYPES}
    PV.objects.bulk_create(
        PV(setpoint_address=address, device="PVA", description=f"pvAccess {kind}", read_only=kind == sim_pva.TABLE)
        for kind, address in addresses.items()
    )
    connection.close()
    return request.getfixturevalue("site"), addresses


@pytest.fixture
def put_back(pva_server):
    """Values the test changes on the pvAccess server go back to what the server held before."""
    saved = {}

    def remember(addresses):
        saved.update(pva_server.pvget([name_of(address) for address in addresses]))

    yield remember
    if saved:
        pva_server.pvput({name: {"value": value["value"]} for name, value in saved.items()})


def test_pvaccess_values_show_and_follow_on_the_live_pages(pva_site, pva_server, browser_page, put_back):
    site, addresses = pva_site
    page = browser_page
    log_in(page, site)
    page.goto(f"{site}/live/?search=PVA")
    shown = {kind: wait_for_live(page, address, HAS_VALUE) for kind, address in addresses.items()}
    screenshot(page, "live_pva")
    served = pva_server.pvget([name_of(address) for address in addresses.values()])
    double = pva_server.of_type(sim_pva.DOUBLE)
    assert double.units in shown[sim_pva.DOUBLE]
    enum_index = served[name_of(addresses[sim_pva.ENUM])]["value"]["index"]
    assert shown[sim_pva.ENUM].strip() == sim_pva.ENUM_CHOICES[enum_index]
    assert served[name_of(addresses[sim_pva.STRING])]["value"] in shown[sim_pva.STRING]
    # A table reads as one (snapshots/comparison, "Structures"): its size, then each column.
    assert f"table {sim_pva.TABLE_ROWS}×{len(sim_pva.TABLE_COLUMNS)}: device [" in shown[sim_pva.TABLE]
    assert shown[sim_pva.BOOL].strip() in ("0", "1")

    # Another client's put follows on the open page, as a Channel Access one does (shown with
    # the channel's precision).
    put_back([addresses[sim_pva.DOUBLE]])
    first, second = (f"{value:.{double.precision}f}" for value in (42.0, 57.0))
    pva_server.pvput({double.name: {"value": 42.0}})
    wait_for_live(page, addresses[sim_pva.DOUBLE], f"text.includes('{first}')")

    # A snapshot's page: the saved value and the live one beside it.
    snapshot = take_snapshot(page, site, "pvAccess beside Channel Access")
    page.goto(f"{site}/snapshots/{snapshot}/?name=PVA")
    wait_for_live(page, addresses[sim_pva.DOUBLE], f"text.includes('{first}')")
    pva_server.pvput({double.name: {"value": 57.0}})
    wait_for_live(page, addresses[sim_pva.DOUBLE], f"text.includes('{second}')")
    screenshot(page, "snapshot_pva")
    row = page.locator("tr", has_text=addresses[sim_pva.DOUBLE]).first.inner_text()
    assert first in row and second in row  # saved, and live
