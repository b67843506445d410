"""The pages in Debian's chromium (Playwright), against the whole system on loopback.

A daphne web server, a Celery worker and the monitor run as subprocesses on the test database
and Redis, next to the simulated IOC; the IOC is changed by an independent pyepics process, as
in snapshots/tests/test_end_to_end.py. Each step saves a screenshot to test-artifacts/screenshots/
for a person to look at.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from monitor import live
from pvs import sim
from pvs.models import PV
from snapshots.tests.test_end_to_end import ca, caget_many, caput_many, registry  # noqa: F401 - a fixture

pytestmark = [pytest.mark.browser, pytest.mark.ioc, pytest.mark.worker]

SCREENSHOTS = Path(settings.BASE_DIR) / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
START_TIMEOUT = 60.0
LIVE_CHANGE_LIMIT_MS = 2000


class Processes:
    """Subprocesses of one test (web, worker, monitor) on the test database; all stopped at its end."""

    def __init__(self, log_dir: Path):
        self.log_dir, self.running = log_dir, []
        self.env = dict(
            os.environ,
            DJANGO_SETTINGS_MODULE=settings.SETTINGS_MODULE,
            SQUIRREL_DB_NAME=connection.settings_dict["NAME"],
            SQUIRREL_STATIC_ROOT=str(log_dir / "static"),
            PYTHONUNBUFFERED="1",
            PATH=f"{os.path.dirname(sys.executable)}:{os.environ.get('PATH', '')}",
        )

    def start(self, name: str, *args: str, ready) -> subprocess.Popen:
        """Start `python args...` and wait until `ready()` (fail the test with its log if it exits)."""
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("a") as log:
            process = subprocess.Popen(
                [sys.executable, *args], cwd=settings.BASE_DIR, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        self.running.append(process)
        deadline = time.monotonic() + START_TIMEOUT
        while not ready(log_path.read_text(errors="replace")):
            assert process.poll() is None, f"{name} exited:\n{log_path.read_text(errors='replace')}"
            assert time.monotonic() < deadline, f"{name} not ready:\n{log_path.read_text(errors='replace')}"
            time.sleep(0.1)
        return process

    def run(self, *args: str) -> None:
        subprocess.run([sys.executable, *args], cwd=settings.BASE_DIR, env=self.env, check=True, capture_output=True)

    def stop_all(self) -> None:
        for process in self.running:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.running:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except OSError:
        return False


def monitor_synced(addresses) -> bool:
    beats = live.read_heartbeats()
    values = live.read_values(list(addresses))
    return bool(beats) and all(beat.get("synced") for beat in beats) and all(v is not None for v in values.values())


@pytest.fixture
def site(registry, redis_db, admin_user, tmp_path):  # noqa: F811 - `registry` is the imported fixture
    """The whole system: monitor, worker and web server; yields the site's base URL."""
    processes = Processes(tmp_path)
    try:
        processes.run("manage.py", "collectstatic", "--noinput", "--verbosity", "0")
        processes.start("monitor", "manage.py", "monitor_pvs", "--registry-interval", "0.5", ready=lambda log: True)
        deadline = time.monotonic() + START_TIMEOUT
        addresses = [pv.setpoint for pv in registry.pvs]
        while not monitor_synced(addresses):
            assert time.monotonic() < deadline, f"the monitor did not sync:\n{(tmp_path / 'monitor.log').read_text()}"
            time.sleep(0.2)
        processes.start(
            "worker",
            "-m",
            "celery",
            "-A",
            "squirrel_site",
            "worker",
            "--pool",
            "threads",
            "--concurrency",
            "2",
            "--loglevel",
            "INFO",
            "--without-mingle",
            "--without-gossip",
            ready=lambda log: "ready." in log,
        )
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        processes.start(
            "web",
            "-m",
            "squirrel_site.web_server",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "squirrel_site.asgi:application",
            ready=lambda log: answers(f"{url}/accounts/login/"),
        )
        yield url
    finally:
        processes.stop_all()


@pytest.fixture
def put_on_ioc(registry):  # noqa: F811
    """put_on_ioc({address: value}) writes with an independent pyepics process and returns the time
    of the last put; afterwards every PV it changed is put back to the IOC's initial value (the
    IOC is the session's, and other tests expect those)."""
    initial = {pv.setpoint: pv.value for pv in registry.pvs}
    changed = {}

    def put(values: dict) -> float:
        changed.update({address: initial[address] for address in values})
        script = (
            "import time\nfor a, v in values['pvs'].items():\n"
            "    assert epics.caput(a, v, wait=True, timeout=5) == 1, a\nprint(json.dumps(time.time()))"
        )
        return ca(script, pvs=values)

    yield put
    if changed:
        caput_many(changed)


@pytest.fixture
def browser_page(monkeypatch):
    """A chromium page; Playwright's sync API keeps an event loop, so let the test use the ORM."""
    sync_api = pytest.importorskip("playwright.sync_api")  # (conftest.py skips when chromium is missing)
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-background-networking"]
        )
        page = browser.new_page(viewport={"width": 1500, "height": 950})
        page.set_default_timeout(30_000)
        yield page
        browser.close()


def screenshot(page, name: str) -> None:
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def log_in(page, site) -> None:
    page.goto(f"{site}/")
    assert "/accounts/login/" in page.url
    screenshot(page, "01_login")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "admin-pass")
    page.click("button[type=submit]")
    page.wait_for_url(f"{site}/snapshots/")


def take_snapshot(page, site, title: str, shot: str = "") -> int:
    """Take a snapshot of every PV with the list page's form; returns its id once the job is done."""
    page.goto(f"{site}/snapshots/")
    page.click("#take-snapshot summary")
    page.fill("#id_take-title", title)
    page.select_option("#id_take-mode", "cache")
    if shot:
        screenshot(page, shot)
    page.click("#take-snapshot button[type=submit]")
    page.wait_for_url(f"{site}/snapshots/*/", timeout=60_000)  # the job page opens the snapshot when done
    return int(page.url.rstrip("/").rsplit("/", 1)[1])


def wait_for_live(page, address: str, predicate: str = "text !== ''") -> str:
    """Wait until the live cell of `address` satisfies `predicate` (JS, on `text`); its text."""
    cell = f'[data-live-address="{address}"]'
    page.wait_for_function(
        f"() => {{ const text = document.querySelector('{cell}').textContent; return {predicate}; }}"
    )
    return page.locator(cell).first.text_content()


def live_cell_latency_ms(page, put_on_ioc, address: str, value) -> float:
    """Put `value` on the IOC; ms from the put until the page's live cell of `address` changed.

    The page stamps the moment the cell shows a new value; the put is stamped by its process.
    """
    page.evaluate(
        """(address) => { const cell = document.querySelector(`[data-live-address="${address}"]`);
            const before = cell.textContent;
            window.changedAt = undefined;
            new MutationObserver(() => { if (cell.textContent !== before && !window.changedAt) window.changedAt = Date.now(); })
                .observe(cell, { childList: true, characterData: true, subtree: true }); }""",
        address,
    )
    put_at = put_on_ioc({address: value})
    page.wait_for_function("() => window.changedAt", timeout=10_000)
    return page.evaluate("() => window.changedAt") - put_at * 1000


def edit_registry(address: str, **changes) -> None:
    """Edit a PV as a curator would, in the middle of a browser session.

    Playwright's sync API runs an event loop in this thread, so Django sees an async context and
    gives it a connection of its own: close it, or the test database cannot be dropped at the end.
    """
    PV.objects.filter(setpoint_address=address).update(**changes)
    connection.close()


def test_snapshot_pages_show_live_values_that_follow_the_ioc(site, browser_page, registry, put_on_ioc):  # noqa: F811
    page = browser_page
    pair = registry.of_kind(sim.PAIR)[0]
    log_in(page, site)

    snapshot_id = take_snapshot(page, site, "Browser: before the change", shot="02_take_snapshot_form")
    page.goto(f"{site}/snapshots/")
    assert "Browser: before the change" in page.locator("#snapshots").text_content()
    screenshot(page, "03_snapshot_list")

    page.goto(f"{site}/snapshots/{snapshot_id}/?device={pair.device}")
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
    assert page.locator(f'tr[data-pv="{pair.setpoint}"] [data-live-delta]').text_content().startswith("5.000")
    screenshot(page, "05_snapshot_detail_live_change")

    page.goto(f"{site}/snapshots/{snapshot_id}/?out_of_tolerance=on")
    assert pair.setpoint in page.locator("#values").text_content()
    screenshot(page, "06_snapshot_detail_out_of_tolerance")

    page.goto(f"{site}/live/?device={pair.device}")
    assert wait_for_live(page, pair.setpoint).startswith(f"{target:.{pair.prec}f}")
    screenshot(page, "07_live_table")


def test_restore_from_the_snapshot_page_select_preview_confirm_results_undo(
    site,
    browser_page,
    registry,  # noqa: F811
    put_on_ioc,
):
    page = browser_page
    pair, integer, enum = (registry.of_kind(kind)[2] for kind in (sim.PAIR, sim.INT, sim.ENUM))
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

    page.goto(f"{site}/snapshots/{snapshot_id}/?out_of_tolerance=on")
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


def test_a_stale_preview_is_refused_on_the_page(site, browser_page, registry, put_on_ioc):  # noqa: F811
    page = browser_page
    pair = registry.of_kind(sim.PAIR)[3]
    log_in(page, site)
    snapshot_id = take_snapshot(page, site, "Browser: stale preview")
    put_on_ioc({pair.setpoint: caget_many([pair.setpoint])[pair.setpoint] + 1.0})
    page.goto(f"{site}/snapshots/{snapshot_id}/?name={pair.setpoint}")
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
