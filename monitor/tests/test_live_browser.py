"""The live page in chromium against the whole system (squirrel_site.testing.site): alarms in their
colours, a PV that never connects, and what the page shows while the monitor or the web server is
down, as a person sees it. Screenshots at 1400 and 1920 px in test-artifacts/screenshots/."""

import io

import pytest
from django.db import connection

from pvs import sim
from pvs.importers import import_pvs
from squirrel_site.testing.site import log_in, screenshot, take_snapshot

pytestmark = [pytest.mark.browser, pytest.mark.ioc, pytest.mark.worker, pytest.mark.fault]

STALE_AFTER_S = 3  # SQUIRREL_LIVE_STALE_SECONDS of the site's web process
BACK_TIMEOUT_MS = 90_000  # a process started again on two busy cores, then the page's next retry (≤ 15 s)


@pytest.fixture
def quick_staleness(monkeypatch):
    """The site's processes copy this environment when they start."""
    monkeypatch.setenv("SQUIRREL_LIVE_STALE_SECONDS", str(STALE_AFTER_S))


def register_alarm_pvs(sim_ioc) -> dict[str, str]:
    """Register the IOC's PVs in alarm (and the one it does not serve) as a curator would import
    them; {severity or "never": address}."""
    registry = io.StringIO()
    sim.write_registry_csv(sim_ioc.alarm_pvs, registry)
    assert import_pvs("alarms.csv", registry.getvalue().encode(), dry_run=False).ok
    connection.close()
    return {alarm.severity or "never": f"{sim_ioc.prefix}{_name(alarm)}" for alarm in sim.ALARM_PVS}


def _name(alarm: sim.AlarmPV) -> str:
    signal = alarm.signal
    return f"{signal.code}:{signal.device_type}0001:{signal.name}"


def cell(address: str) -> str:
    return f'[data-live-address="{address}"]'


def banner(page) -> str | None:
    return page.evaluate("""() => { const b = document.getElementById("live-banner");
        return b && !b.hidden ? b.textContent : null; }""")


def wait_for_banner(page, contains: str, timeout: float = 30_000) -> None:
    page.wait_for_function(
        """(contains) => { const b = document.getElementById("live-banner");
            return !!(b && !b.hidden && b.textContent.includes(contains)); }""",
        arg=contains,
        timeout=timeout,
    )


def wait_until_live_again(page) -> None:
    """No banner, and no cell older than the threshold."""
    page.wait_for_function(
        """() => { const b = document.getElementById("live-banner");
            return !(b && !b.hidden) && !document.querySelector(".live-stale"); }""",
        timeout=BACK_TIMEOUT_MS,
    )


def stale_cells(page) -> list[str]:
    return page.evaluate("""() => [...document.querySelectorAll("[data-live-address].live-stale")]
        .map((el) => `${el.dataset.liveAddress} ${el.dataset.age}`)""")


def dense_and_within_the_window(page) -> int:
    """Rows of the live table visible at 1920×1080 (one line each); no horizontal scrolling at
    1400 or 1920 px."""
    for width in (1400, 1920):
        page.set_viewport_size({"width": width, "height": 1080})
        overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{overflow} px of horizontal overflow at {width} px"
    screenshot(page, "live_page_unfiltered_1920")
    return page.evaluate("""() => [...document.querySelectorAll("#live-pvs tbody tr")]
        .filter((row) => row.getBoundingClientRect().bottom <= window.innerHeight).length""")


def screenshots(page, name: str) -> None:
    for width in (1400, 1920):
        page.set_viewport_size({"width": width, "height": 1080})
        screenshot(page, f"live_{name}_{width}")


def test_the_live_page_shows_alarms_and_never_looks_live_when_it_is_not(
    quick_staleness, site, site_processes, browser_page, sim_ioc_registry
):
    alarms = register_alarm_pvs(sim_ioc_registry)
    page = browser_page
    log_in(page, site)
    page.click("nav.mainnav >> text=Live")
    page.wait_for_selector(f"{cell(sim_ioc_registry.pvs[0].setpoint)}:not(:empty)")
    assert dense_and_within_the_window(page) >= 40
    page.fill("#id_search", "0001")  # the devices 0001, which carry the PVs in alarm
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**/live/?*search=0001*")

    # Alarms as colours, the PV no IOC serves as "never connected" (after the monitor's grace).
    for severity, css in (("MINOR", "alarm-minor"), ("MAJOR", "alarm-major"), ("INVALID", "alarm-invalid")):
        page.wait_for_selector(f"{cell(alarms[severity])}.{css}", timeout=30_000)
    page.wait_for_selector(f"{cell(alarms['never'])}.alarm-never", timeout=30_000)
    assert page.locator(cell(alarms["never"])).text_content() == "never connected"
    normal = sim_ioc_registry.of_kind(sim.READONLY)[0].setpoint
    assert page.locator("#live-pvs").text_content().count("NO_ALARM") == 0
    assert banner(page) is None and stale_cells(page) == []
    screenshots(page, "page_alarms")

    # The monitor dies: values age past the threshold, the banner says why.
    site_processes.kill("monitor")
    wait_for_banner(page, "The monitor is stale: its last heartbeat was")
    page.wait_for_selector(f"{cell(alarms['MAJOR'])}.live-stale")
    assert any(line.endswith(" s old") for line in stale_cells(page))
    first = page.locator(cell(alarms["MAJOR"])).get_attribute("data-age")
    page.wait_for_function(
        "([selector, first]) => document.querySelector(selector).dataset.age !== first",
        arg=[cell(alarms["MAJOR"]), first],
    )  # the age counts up without any message
    screenshots(page, "page_monitor_stale")
    wait_for_banner(page, "No monitor is running")  # its heartbeat expired

    site_processes.restart("monitor")
    wait_until_live_again(page)
    assert "alarm-major" in page.locator(cell(alarms["MAJOR"])).get_attribute("class")

    # The web server dies: the socket closes, the banner says so at once, values age.
    site_processes.kill("web")
    wait_for_banner(page, "Connection to the server lost: reconnecting", timeout=5_000)
    page.wait_for_selector(f"{cell(normal)}.live-stale", state="attached", timeout=STALE_AFTER_S * 1000 + 5_000)
    screenshots(page, "page_server_lost")

    site_processes.restart("web")
    wait_until_live_again(page)
    assert page.locator(cell(alarms["never"])).text_content() == "never connected"
    screenshots(page, "page_back")


def test_the_snapshot_pages_live_column_says_so_when_the_monitor_dies(
    quick_staleness, site, site_processes, browser_page, sim_ioc_registry
):
    page = browser_page
    log_in(page, site)
    take_snapshot(page, site, "Live column: before the monitor dies")  # opens the snapshot's page
    pair = sim_ioc_registry.of_kind(sim.PAIR)[0]
    page.wait_for_function(
        "(selector) => document.querySelector(selector)?.textContent", arg=cell(pair.setpoint), timeout=30_000
    )
    assert banner(page) is None and stale_cells(page) == []

    site_processes.kill("monitor")
    wait_for_banner(page, "The monitor is stale: its last heartbeat was")
    page.wait_for_selector(f"{cell(pair.setpoint)}.live-stale", state="attached")
    screenshots(page, "snapshot_page_monitor_stale")
