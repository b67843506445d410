"""The Content-Security-Policy in Debian's chromium: every page works under it and none breaks it.

The same whole system on loopback as test_browser.py (squirrel_site.testing.site); the browser reports each
violation as a `securitypolicyviolation` event and a console error, and both are collected.
"""

import pytest

from pvs import sim
from squirrel_site.testing.site import (
    compare_in_form,
    log_in,
    screenshot,
    submit,
    take_snapshot,
    wait_for_live,
)

pytestmark = [pytest.mark.browser, pytest.mark.ioc, pytest.mark.worker]

COLLECT_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI} ${event.sourceFile}:${event.lineNumber}`);
});
"""


@pytest.fixture
def watched_page(browser_page):
    """A chromium page that records CSP violations; `watched_page.violations()` after each visit."""
    console = []
    browser_page.on(
        "console",
        lambda message: console.append(message.text) if "Content Security Policy" in message.text else None,
    )
    browser_page.add_init_script(COLLECT_VIOLATIONS)

    def violations() -> list[str]:
        found = browser_page.evaluate("window.__cspViolations") + console
        console.clear()
        return found

    browser_page.violations = violations
    return browser_page


def test_every_page_works_under_the_content_security_policy(site, watched_page, sim_ioc_registry, admin_user):
    page = watched_page
    pair = sim_ioc_registry.of_kind(sim.PAIR)[4]
    seen = {}
    sockets = []  # the frames received on each /ws/live/ socket the pages opened, in order

    def watch(socket) -> None:
        if "/ws/live/" in socket.url:
            frames = []
            socket.on("framereceived", lambda payload: frames.append(payload))
            sockets.append(frames)

    page.on("websocket", watch)

    def visit(name: str, url: str | None = None, ready: str = "main") -> None:
        if url is not None:
            page.goto(f"{site}{url}")
        page.wait_for_selector(ready)
        page.wait_for_load_state("load")
        seen[name] = page.violations()

    visit("login", "/accounts/login/", "#id_username")
    log_in(page, site)
    snapshot_id = take_snapshot(page, site, "Browser: CSP")  # the job page, then the snapshot page
    seen["snapshot list and job page"] = page.violations()
    page.fill("#id_device", pair.device)  # the snapshot page's filter form
    submit(page)
    visit("snapshot page")
    assert wait_for_live(page, pair.setpoint)  # live.js's values over /ws/live/
    page.check("#select-page")  # select_page.js, the former inline script
    assert page.locator('#values input[name="pv"]:not(:checked)').count() == 0
    seen["snapshot page, live values"] = page.violations()

    compare_in_form(page, site, snapshot_id, "live", device=pair.device)
    visit("compare", ready="#comparison")
    page.click("nav.mainnav >> text=Live")
    page.wait_for_url(f"{site}/live/")
    page.fill("#id_device", pair.device)
    submit(page)
    visit("live")
    assert wait_for_live(page, pair.setpoint)
    assert sockets[-1], "the live page's values did not come over its WebSocket"
    seen["live values"] = page.violations()
    page.click("nav.mainnav >> text=Drift")
    page.wait_for_url(f"{site}/drift/")
    page.select_option("#id_snapshot", str(snapshot_id))
    submit(page, "#drift-form")
    visit("drift")

    page.click("nav.mainnav >> text=Snapshots")
    page.wait_for_url(f"{site}/snapshots/")
    page.click(f'#snapshots a[href="/snapshots/{snapshot_id}/"]')
    page.wait_for_url(f"{site}/snapshots/{snapshot_id}/")
    page.fill("#id_name", pair.setpoint)
    submit(page)
    page.click("#restore-filtered")
    page.wait_for_url(f"{site}/restores/previews/*/")
    visit("restore preview")
    screenshot(page, "csp_restore_preview")

    visit("admin index", "/admin/", "#content-main")
    visit("admin PV list", "/admin/pvs/pv/", "#result_list")
    page.click("#result_list tbody tr th a")
    visit("admin PV form", ready="#pv_form")
    page.goto(f"{site}/admin/knox/authtoken/add/")
    page.fill("#id_user", str(admin_user.pk))  # a raw-id field
    page.click("input[name=_save]")
    visit("admin new token page", ready="#api-token")
    assert page.eval_on_selector("#api-token", "code => getComputedStyle(code).userSelect") == "all"  # admin.css
    visit("API docs", "/api/v1/docs/", ".opblock")
    screenshot(page, "csp_api_docs")

    assert {name: found for name, found in seen.items() if found} == {}
    assert len(seen) == 14
