"""A snapshot from the archive in Debian's chromium (Playwright), against the whole system on
loopback (web, worker, monitor, the simulated IOC) and `run_sim_archiver` recording off that IOC:
an operator fills the take form with a time before a change, submits it, and the snapshot page
that opens shows the values as they were then. Screenshots go to test-artifacts/screenshots/."""

import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings

from pvs import sim
from squirrel_site.testing.archiver import recorded
from squirrel_site.testing.site import log_in, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.ioc, pytest.mark.worker]


@pytest.fixture
def archive_env(sim_archiver, monkeypatch):
    """The site's processes (started after this) ask the simulated archiver."""
    monkeypatch.setenv("SQUIRREL_ARCHIVER_URL", f"sim={sim_archiver.url}")
    return sim_archiver


def test_take_a_snapshot_from_the_archive_in_the_form_and_open_it(
    archive_env, site, browser_page, put_on_ioc, sim_ioc_registry
):
    page = browser_page
    pair = sim_ioc_registry.of_kind(sim.PAIR)[4]
    before = recorded([pair.setpoint])[pair.setpoint].value.value
    time.sleep(1.2)  # the form takes whole seconds
    at = datetime.now(UTC).astimezone(ZoneInfo(settings.TIME_ZONE))
    time.sleep(1.2)
    put_on_ioc({pair.setpoint: before + 3.0})

    log_in(page, site)
    page.click("#take-snapshot summary")
    page.fill("#id_take-title", "As it was")
    page.select_option("#id_take-mode", "archive")
    page.fill("#id_take-at", at.strftime("%Y-%m-%d %H:%M:%S"))
    page.fill("#id_take-search", pair.setpoint)
    screenshot(page, "archive_01_take_form")
    page.click("#take-snapshot button[type=submit]")
    page.wait_for_url(f"{site}/snapshots/*/", timeout=60_000)  # the job page opens the snapshot when done
    screenshot(page, "archive_02_snapshot")

    assert "As archived at" in page.inner_text("dl.facts")
    assert at.strftime("%Y-%m-%d %H:%M:%S") in page.inner_text("#archived-at")
    row = page.locator(f'tr[data-pv="{pair.setpoint}"]')
    saved = row.locator("td.value").first.inner_text()
    assert saved.split()[0] == f"{before:.{pair.prec}f}"
    assert "old" in row.locator(".sample-age").inner_text()
