"""The whole system on loopback for browser tests: a daphne web server, a Celery worker and the
monitor as subprocesses on the test database and Redis, next to the simulated IOC; a chromium page
(Playwright) and the steps the page tests share. Each step can save a screenshot to
test-artifacts/screenshots/ for a person to look at."""

import os
import signal
import socket
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from monitor import live
from squirrel_site.testing import eventually
from squirrel_site.testing.ioc import WORKER_ARGS, ca, caput_many

SCREENSHOTS = Path(settings.BASE_DIR) / "test-artifacts" / "screenshots"


CHROMIUM = "/usr/bin/chromium"


START_TIMEOUT = 60.0


class Processes:
    """Subprocesses of one test (web, worker, monitor) on the test database; all stopped at its end."""

    def __init__(self, log_dir: Path):
        self.log_dir, self.running = log_dir, []
        self.started: dict[str, tuple[tuple[str, ...], object, subprocess.Popen]] = {}  # name -> (args, ready, process)
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
        self.started[name] = (args, ready, process)

        def is_ready() -> bool:
            if process.poll() is not None:
                pytest.fail(f"{name} exited:\n{log_path.read_text(errors='replace')}")
            return ready(log_path.read_text(errors="replace"))

        try:
            eventually(is_ready, START_TIMEOUT, what=f"{name} ready")
        except AssertionError:
            pytest.fail(f"{name} not ready:\n{log_path.read_text(errors='replace')}")
        return process

    def kill(self, name: str) -> None:
        """SIGKILL the process last started as `name` (a crash: no clean-up) and reap it."""
        process = self.started[name][2]
        process.kill()
        process.wait()

    def restart(self, name: str) -> subprocess.Popen:
        """Start `name` again with its arguments and readiness check (the log is appended to, so a
        check that reads the log sees the previous run too)."""
        args, ready, _ = self.started[name]
        return self.start(name, *args, ready=ready)

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
def site_processes(tmp_path):
    """The processes of `site` (Processes): a test may kill one (`kill("monitor")`) and `restart` it."""
    processes = Processes(tmp_path)
    yield processes
    processes.stop_all()


@pytest.fixture
def site(site_processes, sim_ioc_registry, redis_db, admin_user, tmp_path):
    """The whole system: monitor, worker and web server; yields the site's base URL."""
    processes = site_processes
    try:
        processes.run("manage.py", "collectstatic", "--noinput", "--verbosity", "0")
        processes.start("monitor", "manage.py", "monitor_pvs", "--registry-interval", "0.5", ready=lambda log: True)
        addresses = [pv.setpoint for pv in sim_ioc_registry.pvs]
        try:
            eventually(lambda: monitor_synced(addresses), START_TIMEOUT, interval=0.2, what="the monitor synced")
        except AssertionError:
            pytest.fail(f"the monitor did not sync:\n{(tmp_path / 'monitor.log').read_text()}")
        processes.start("worker", *WORKER_ARGS, ready=lambda log: "ready." in log)
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
def put_on_ioc(sim_ioc_registry):
    """put_on_ioc({address: value}) writes with an independent pyepics process and returns the time
    of the last put; afterwards every PV it changed is put back to the IOC's initial value (the
    IOC is the session's, and other tests expect those)."""
    initial = {pv.setpoint: pv.value for pv in sim_ioc_registry.pvs}
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


def submit(page, form: str = "form.filters") -> None:
    """Press the submit button of `form` (a CSS selector; the page's filter form by default), as
    a person does after filling it, and wait for the page it opens."""
    with page.expect_navigation():
        page.click(f"{form} button[type=submit]")


def compare_in_form(page, site, a: int, b: int | str = "live", device: str = "", differences_only=False) -> None:
    """Open Compare from the nav, choose A and B (a snapshot id or "live"), a device prefix and
    differences only in its form, and press Compare."""
    page.click("nav.mainnav >> text=Compare")
    page.wait_for_url(f"{site}/compare/")
    page.select_option("#id_a", str(a))
    page.select_option("#id_b", str(b))
    page.fill("#id_device", device)
    page.set_checked("#id_differences_only", differences_only)
    submit(page, "#compare-form")


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
            new MutationObserver(() => {
                if (cell.textContent !== before && !window.changedAt) window.changedAt = Date.now(); })
                .observe(cell, { childList: true, characterData: true, subtree: true }); }""",
        address,
    )
    put_at = put_on_ioc({address: value})
    page.wait_for_function("() => window.changedAt", timeout=10_000)
    return page.evaluate("() => window.changedAt") - put_at * 1000


LIVE_CHANGE_LIMIT_MS = 2000


def pytest_collection_modifyitems(config, items):
    """Browser tests need Debian's chromium; without it they are skipped, saying how to get it."""
    if os.path.exists(CHROMIUM):
        return
    skip = pytest.mark.skip(
        reason=f"{CHROMIUM} is missing: apt-get install chromium (.ci/test does, as root or through sudo)"
    )
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(skip)
