"""static/squirrel/live.js in Debian's chromium, against a scripted /ws/live/ (Playwright's WebSocket routes).

The server side is mocked here so each step of the protocol is under the test's control; the
consumer itself is tested through the ASGI app in test_consumers.py, and the page tests run both.
"""

import json
import math
import random
import re
from pathlib import Path

import pytest
from django.conf import settings

from snapshots.comparison.rules import delta, structure_differences, within_tolerance
from squirrel_site.epics_values import delta_text, number_text
from squirrel_site.testing.snapshots import nt_table, structure

pytestmark = pytest.mark.browser

SITE = "http://squirrel.test"
LIVE_JS = Path(settings.BASE_DIR) / "static" / "squirrel" / "live.js"
SCREENSHOTS = Path(settings.BASE_DIR) / "test-artifacts" / "screenshots"
PAGE = """<!doctype html><html><head><title>live.js</title>
<link rel="stylesheet" href="/static/squirrel/squirrel.css"><link rel="stylesheet" href="/static/squirrel/live.css">
</head><body>
<table>
  <tr id="row-a" data-saved="1.0" data-kind="float" data-abs-tol="0.1" data-rel-tol="0">
    <td>T:A</td><td id="a1" data-live-address="T:A"></td><td id="delta-a" data-live-delta data-units="mA"></td></tr>
  <tr id="row-w" data-saved="[1, 2]" data-kind="float_array" data-abs-tol="0.1" data-rel-tol="0">
    <td>T:W</td><td data-live-address="T:W"></td><td id="delta-w" data-live-delta></td></tr>
  <tr id="row-e" data-saved="1" data-kind="enum">
    <td>T:E</td><td id="e" data-live-address="T:E"></td><td id="delta-e" data-live-delta></td></tr>
  <tr id="row-n" data-saved="1.0" data-kind="float" data-abs-tol="0.1" data-rel-tol="0">
    <td>T:A</td><td>1.0</td><td id="n-live" data-live-highlight><span id="n-a" data-live-address="T:A"></span></td>
    <td id="n-delta" data-live-highlight><span data-live-delta></span></td></tr>
</table>
<p>Again: <span id="a2" data-live-address="T:A"></span></p>
<main><table><tr><td>T:MINOR</td><td id="minor" data-live-address="T:MINOR"></td></tr>
  <tr><td>T:MAJOR</td><td id="major" data-live-address="T:MAJOR"></td></tr>
  <tr><td>T:INVALID</td><td id="invalid" data-live-address="T:INVALID"></td></tr>
  <tr><td>T:GONE</td><td id="gone" data-live-address="T:GONE"></td></tr>
  <tr><td>T:NEVER</td><td id="never" data-live-address="T:NEVER"></td></tr>
  <tr><td>T:PRE</td><td id="pre" data-live-address="T:PRE" title="T:PRE, live">7.5 A</td></tr></table></main>
<script type="module" src="/static/squirrel/live.js"></script>
</body></html>"""


ALL = ["T:A", "T:E", "T:GONE", "T:INVALID", "T:MAJOR", "T:MINOR", "T:NEVER", "T:PRE", "T:W"]


def value(v, display, severity=0, connected=True):
    return {
        "value": v,
        "display": display,
        "severity": severity,
        "status": 0,
        "connected": connected,
        "timestamp": 1_700_000_000.0,
    }


class ScriptedServer:
    """The /ws/live/ end of the page's sockets: records what the page sends, sends what we say.
    While `down`, every new socket is closed at once (a server that is not there)."""

    def __init__(self, page):
        self.page, self.sockets, self.received, self.down = page, [], [], False
        page.route_web_socket(f"{SITE.replace('http', 'ws')}/ws/live/", self._accept)

    def _accept(self, ws):
        if self.down:
            ws.close()
            return
        self.sockets.append(ws)
        ws.on_message(lambda message: self.received.append(json.loads(message)))

    def send_health(self, monitor="ok", age=0.2, stale_after=2.0) -> None:
        health = {"type": "health", "monitor": monitor, "heartbeat_age_s": age, "stale_after_s": stale_after}
        self.sockets[-1].send(json.dumps(health))

    def wait_for(self, predicate, what: str) -> dict:
        for _ in range(100):
            found = [m for m in self.received if predicate(m)]
            if found:
                self.received.remove(found[0])
                return found[0]
            self.page.wait_for_timeout(50)
        pytest.fail(f"the page never sent {what}; it sent {self.received}")

    def send_and_wait_for_ack(self, seq: int, full: bool, values: dict) -> None:
        self.sockets[-1].send(json.dumps({"type": "values", "seq": seq, "full": full, "values": values}))
        self.wait_for(lambda m: m == {"ack": seq}, f"the ack of {seq}")


@pytest.fixture
def page():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-background-networking"]
        )
        page = browser.new_page()
        page.route(f"{SITE}/", lambda route: route.fulfill(body=PAGE, content_type="text/html"))
        page.route(
            f"{SITE}/static/squirrel/*.js",  # live.js and the kinds.js it imports
            lambda route: route.fulfill(
                body=(LIVE_JS.parent / route.request.url.rsplit("/", 1)[1]).read_text(), content_type="text/javascript"
            ),
        )
        for name in ("squirrel.css", "live.css"):
            page.route(f"{SITE}/static/squirrel/{name}", _stylesheet(LIVE_JS.parent / name))
        yield page
        browser.close()


def _stylesheet(path: Path):
    return lambda route: route.fulfill(body=path.read_text(), content_type="text/css; charset=utf-8")


def text(page, selector):
    return page.locator(selector).text_content()


def test_the_page_subscribes_once_per_address_and_shows_values_deltas_and_tolerance(page):
    server = ScriptedServer(page)
    page.goto(f"{SITE}/")
    assert server.wait_for(lambda m: "subscribe" in m, "a subscription") == {"subscribe": ALL}
    server.wait_for(lambda m: m == {"health": True}, "a request for health messages")

    server.send_and_wait_for_ack(
        1,
        True,
        {
            "T:A": value(1.05, "1.05 mA"),
            "T:W": value([1.0, 2.5], "[1.0, 2.5]"),
            "T:E": value(2, "Two"),
        },
    )
    assert text(page, "#a1") == text(page, "#a2") == "1.05 mA"
    assert page.locator("#a1").get_attribute("data-connected") == "true"
    assert (text(page, "#delta-a"), text(page, "#delta-w"), text(page, "#delta-e")) == ("+0.05 mA", "+0.5", "")
    assert classes(page, "#row-a") == set() and "out-of-tolerance" in classes(page, "#row-w") & classes(page, "#row-e")
    assert classes(page, "#n-live") | classes(page, "#n-delta") | classes(page, "#row-n") == set()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "live_js_values.png")

    server.send_and_wait_for_ack(2, False, {"T:A": value(2.0, "2.00 mA", severity=2)})
    assert (text(page, "#a1"), page.locator("#a1").get_attribute("data-severity")) == ("2.00 mA", "2")
    assert (text(page, "#delta-a"), "out-of-tolerance" in classes(page, "#row-a")) == ("+1 mA", True)
    # A row with [data-live-highlight] cells (the N-way table) highlights those, not itself.
    assert classes(page, "#n-live") == classes(page, "#n-delta") == {"out-of-tolerance"}
    assert classes(page, "#row-n") == set()
    assert text(page, "#e") == "Two"  # untouched by a diff without it

    server.send_and_wait_for_ack(3, False, {"T:A": value(2.0, "2.00 mA", connected=False)})
    assert page.locator("#a2").get_attribute("data-connected") == "false"
    assert (text(page, "#delta-a"), classes(page, "#row-a")) == ("", set())
    assert classes(page, "#n-live") | classes(page, "#n-delta") == set()


def test_new_elements_are_subscribed_and_a_lost_socket_comes_back_with_the_same_subscription(page):
    server = ScriptedServer(page)
    page.goto(f"{SITE}/")
    server.wait_for(lambda m: "subscribe" in m, "a subscription")
    server.send_and_wait_for_ack(
        1, True, {"T:A": value(1.0, "1.0"), "T:W": value([1, 2], "[1, 2]"), "T:E": value(1, "One")}
    )
    page.evaluate("""() => {
        const span = document.createElement("span");
        span.dataset.liveAddress = "T:NEW";
        document.body.append(span);
    }""")
    with_new = sorted([*ALL, "T:NEW"])
    assert server.wait_for(lambda m: "subscribe" in m, "a new subscription") == {"subscribe": with_new}
    server.sockets[-1].close()
    assert server.wait_for(lambda m: "subscribe" in m, "a subscription after reconnecting") == {"subscribe": with_new}
    assert len(server.sockets) == 2


def test_each_applied_message_is_announced_on_the_document(page):
    server = ScriptedServer(page)
    page.goto(f"{SITE}/")
    server.wait_for(lambda m: "subscribe" in m, "a subscription")
    page.evaluate("""() => { window.announced = [];
        document.addEventListener("squirrel:live", (e) => window.announced.push([e.detail.seq, e.detail.full])); }""")
    server.send_and_wait_for_ack(1, True, {"T:A": value(1.0, "1.0")})
    server.send_and_wait_for_ack(2, False, {"T:A": value(2.0, "2.0")})
    assert page.evaluate("() => window.announced") == [[1, True], [2, False]]


def classes(page, selector) -> set[str]:
    return set((page.locator(selector).get_attribute("class") or "").split())


CASES = [
    (1.0, 1.05, "float", 0.1, 0.0),
    (1.0, 1.2, "float", 0.1, 0.0),
    (100.0, 101.0, "float", 0.0, 0.02),
    ("NaN", "NaN", "float", 0.0, 0.0),
    ("NaN", 1.0, "float", 1.0, 0.0),
    ("Infinity", "Infinity", "float", 0, 0),
    ("Infinity", "-Infinity", "float", 0, 0),
    (None, 1.0, "float", 1, 0),
    (1.0, None, "float", 1, 0),
    (3, 4, "int", 1, 0),
    (3, 5, "int", 1, 0),
    ([1.0, 2.0], [1.0, 2.05], "float_array", 0.1, 0),
    ([1.0, 2.0], [1.0], "float_array", 0.1, 0),
    ([1, 2], [1, 3], "int_array", 0, 0),
    (5.0, [5.0], "float_array", 0, 0),
    (1, 1, "enum", 0, 0),
    (1, 2, "enum", 0, 0),
    ("a", "a", "string", 0, 0),
    ("a", "b", "string", 0, 0),
    (1.0, "text", "float", 0, 0),
    (["a", "b"], ["a", "b"], "string_array", 1, 1),
    (["a", "b"], ["a", "c"], "string_array", 1, 1),
    (["a", "b"], ["a"], "string_array", 0, 0),
    (["a"], "a", "string_array", 0, 0),
]


def test_tolerance_delta_and_number_text_follow_the_python_rules(page):
    ScriptedServer(page)
    page.goto(f"{SITE}/")
    js = page.evaluate(
        """async (cases) => {
            const live = await import("/static/squirrel/live.js");
            return cases.map(([s, l, kind, a, r]) => [live.withinTolerance(s, l, kind, a, r), live.delta(s, l, kind)]);
        }""",
        CASES,
    )
    for (saved, live_value, kind, abs_tol, rel_tol), (js_within, js_delta) in zip(CASES, js, strict=True):
        py_saved, py_live = _python(saved), _python(live_value)
        assert js_within == within_tolerance(py_saved, py_live, kind, abs_tol, rel_tol), (saved, live_value, kind)
        expected = _delta_or_none(py_saved, py_live, kind)
        assert _close(js_delta, expected), (saved, live_value, kind, js_delta, expected)

    numbers = [0.0, 0.05000000000000004, -1.5, 123456.7, 1234567.0, 0.000123456789, 1e-5, 2.5e300, 42.0]
    # Tiny ones that would show as zeros, and huge ones: exponents.
    numbers += [3e-9, -3e-9, 0.004, 0.006, -0.00085, -0.0004, 0.01, 0.4, 0.6, 1e-20, 999999999999999.0, 1e15]
    precisions = [None, 0, 2, 3, 17]
    js_texts = page.evaluate(
        """async ([numbers, precisions]) => {
            const live = await import("/static/squirrel/live.js");
            return numbers.map((x) => precisions.map((p) => live.numberText(x, p)));
        }""",
        [numbers, precisions],
    )
    assert js_texts == [[number_text(x, p) for p in precisions] for x in numbers]


def _table(setpoint, device=("Q1", "Q2", "Q3"), **extra) -> str:
    columns = {"device": ("as", list(device)), "setpoint": ("ad", list(setpoint))}
    return nt_table(columns | {name: ("a?", list(items)) for name, items in extra.items()}).text


def _structure_cases() -> list:
    """(saved, live, abs, rel) of structures: tables alike, within, beyond, reshaped, and others."""
    base = _table([1.0, 2.0, 3.0])
    cases = [
        (base, base, 0, 0),
        (base, _table([1.0, 2.05, 3.0]), 0.1, 0),
        (base, _table([1.0, 2.5, 3.5]), 0.1, 0),
        (base, _table([1.0, 2.0, 3.0, 4.0], device=("Q1", "Q2", "Q3", "Q4")), 1e9, 1),
        (base, _table([1.0, 2.0, 3.0], on=[True, False, True]), 0, 0),
        (_table([1.0, 2.0, 3.0], on=[True, False, True]), base, 0, 0),
        (base, _table([1.0, 2.0, 3.0], device=("Q1", "QX", "Q3")), 1e9, 1),
        (_table([float("nan"), 2.0, 3.0]), _table([float("nan"), 2.0, 3.0]), 0, 0),
        (_table([float("nan"), 2.0, 3.0]), _table([float("inf"), 2.0, 3.0]), 1e300, 1),
        (_table([0.0] * 30, device=["Q"] * 30), _table([1.0] * 30, device=["Q"] * 30), 0, 0),
        (_table([1.0, 2.0, 3.0], on=[True, True, True]), _table([1.0, 2.0, 3.0], on=[True, False, True]), 9, 9),
        (structure("my:t", {"x": 1.5, "s": {"y": 2}}).text, structure("my:t", {"x": 1.5, "s": {"y": 3}}).text, 9, 9),
        (structure("my:t", {"x": 1.5}).text, structure("my:t", {"x": 1.5, "z": "a"}).text, 0, 0),
        (structure("my:t", {"x": 1.5}).text, structure("other:t", {"x": 1.5}).text, 0, 0),
        (base, structure("my:t", {"x": 1.5}).text, 0, 0),
        ("{not json", "{not json either", 0, 0),
        ('{"id":"x","value":{"a":NaN}}', '{"id":"x","value":{"a":NaN}}', 0, 0),
    ]
    rng = random.Random(7)
    for _ in range(60):
        n = rng.randrange(4)
        saved = [rng.choice([rng.uniform(-5, 5), 0.0, float("nan")]) for _ in range(n)]
        live = [x + rng.choice([0.0, rng.uniform(-0.2, 0.2), 3.0]) for x in saved]
        device = [rng.choice("AB") for _ in range(n)]
        cases.append((_table(saved, device), _table(live, device), rng.choice([0, 0.1]), rng.choice([0, 0.05])))
    return cases


def test_structures_compare_and_say_how_they_differ_as_the_python_rule_does(page):
    ScriptedServer(page)
    page.goto(f"{SITE}/")
    cases = _structure_cases()
    js = page.evaluate(
        """async (cases) => {
            const live = await import("/static/squirrel/live.js");
            return cases.map(([s, l, a, r]) => [live.withinTolerance(s, l, "structure", a, r),
                                                live.structureDifferences(s, l, a, r), live.delta(s, l, "structure")]);
        }""",
        cases,
    )
    for (saved, live_value, abs_tol, rel_tol), (js_within, js_differences, js_delta) in zip(cases, js, strict=True):
        assert js_within == within_tolerance(saved, live_value, "structure", abs_tol, rel_tol), (saved, live_value)
        assert js_differences == structure_differences(saved, live_value, abs_tol, rel_tol), (saved, live_value)
        assert js_delta is None
    assert {within for within, _, _ in js} == {True, False}


def test_a_table_row_says_which_rows_differ_as_its_live_value_changes(page):
    server = ScriptedServer(page)
    page.goto(f"{SITE}/")
    server.wait_for(lambda m: "subscribe" in m, "a subscription")
    saved = _table([1.0, 2.0, 3.0])
    page.evaluate(
        """(saved) => {
            const row = document.createElement("tr");
            row.id = "row-t";
            Object.assign(row.dataset, {saved: JSON.stringify(saved), kind: "structure", absTol: "0.1", relTol: "0"});
            row.innerHTML = '<td data-live-address="T:TABLE"></td><td id="delta-t" data-live-delta></td>';
            document.querySelector("table").append(row);
        }""",
        saved,
    )
    server.wait_for(lambda m: "T:TABLE" in m.get("subscribe", []), "a subscription with the table")
    server.send_and_wait_for_ack(1, True, {"T:TABLE": value(_table([1.0, 2.5, 3.05]), "table 3×2: …")})
    assert text(page, "#delta-t") == "column `setpoint`: row 1 differs"
    assert "out-of-tolerance" in classes(page, "#row-t")
    server.send_and_wait_for_ack(2, False, {"T:TABLE": value(_table([1.0, 2.05, 3.0]), "table 3×2: …")})
    assert (text(page, "#delta-t"), classes(page, "#row-t")) == ("", set())


def _python(v):
    """What snapshots.comparison.rules sees for a JSON value (to_json spells non-finite floats)."""
    if isinstance(v, str) and v in ("NaN", "Infinity", "-Infinity"):
        return float(v.replace("Infinity", "inf"))
    return v


def test_a_delta_is_signed_and_has_units_as_the_python_pages_show_it(page):
    ScriptedServer(page)
    page.goto(f"{SITE}/")
    cases = [[0.5, 3, "mA"], [-0.5, 3, "mA"], [0.0, 2, ""], [1234567.0, None, "V"], [-2.0, None, ""]]
    cases += [[2e-10, 2, "Torr"], [-2e-10, 2, "Torr"]]
    shown = page.evaluate(
        """async (cases) => {
            const live = await import("/static/squirrel/live.js");
            return cases.map(([x, p, u]) => live.deltaText(x, p, u));
        }""",
        cases,
    )
    assert (
        shown
        == [delta_text(x, p, u) for x, p, u in cases]
        == [
            "+0.500 mA",
            "-0.500 mA",
            "0.00",
            "+1.23457e+06 V",
            "-2",
            "+2.00e-10 Torr",
            "-2.00e-10 Torr",
        ]
    )


def _delta_or_none(saved, live, kind):
    try:
        return delta(saved, live, kind)
    except (TypeError, ValueError):
        return None


def _close(js, py):
    if isinstance(py, list):
        return isinstance(js, list) and len(js) == len(py) and all(_close(a, b) for a, b in zip(js, py, strict=True))
    if py is None or js is None:
        return py is js
    return math.isclose(js, py) or (math.isnan(js) and math.isnan(py))


def state(page, selector) -> tuple:
    """(text, alarm classes, title) of a live element."""
    cell = page.locator(selector)
    return (
        cell.text_content(),
        {c for c in classes(page, selector) if c.startswith("alarm-")},
        cell.get_attribute("title"),
    )


def test_alarm_severity_and_connection_are_shown_as_such(page):
    server = ScriptedServer(page)
    page.goto(f"{SITE}/")
    server.wait_for(lambda m: "subscribe" in m, "a subscription")
    assert page.evaluate("() => getComputedStyle(document.querySelector('#never'), '::before').content") == '"…"'
    never = {"value": None, "display": "", "severity": None, "status": None, "connected": False, "timestamp": None}
    server.send_and_wait_for_ack(
        1,
        True,
        {
            "T:A": value(1.0, "1.00 mA"),
            "T:MINOR": value(5.2e-7, "5.20e-07 Torr", severity=1),
            "T:MAJOR": value(71.5, "71.5 degC", severity=2),
            "T:INVALID": value(0.0, "0.00 kW", severity=3),
            "T:GONE": value(3.5, "3.50 mm", connected=False),
            "T:NEVER": never,
        },
    )
    server.send_health()
    assert state(page, "#a1") == ("1.00 mA", set(), None)
    assert state(page, "#minor") == ("5.20e-07 Torr", {"alarm-minor"}, None)
    assert state(page, "#major") == ("71.5 degC", {"alarm-major"}, None)
    assert state(page, "#invalid") == ("0.00 kW", {"alarm-invalid"}, None)
    assert state(page, "#gone") == ("disconnected", {"alarm-disconnected"}, "last value 3.50 mm")
    assert state(page, "#never") == ("never connected", {"alarm-never"}, None)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "live_js_alarms.png")

    # Back in order: every alarm class goes.
    back = {"T:MAJOR": value(40.0, "40.0 degC"), "T:GONE": value(3.5, "3.50 mm"), "T:NEVER": value(1.0, "1.00")}
    server.send_and_wait_for_ack(2, False, back)
    assert [state(page, s) for s in ("#major", "#gone", "#never")] == [
        ("40.0 degC", set(), None),
        ("3.50 mm", set(), None),
        ("1.00", set(), None),
    ]


def banner(page) -> str | None:
    """The connection banner's text, None when there is none to see."""
    return page.evaluate("""() => { const b = document.getElementById("live-banner");
        return b && !b.hidden ? b.textContent : null; }""")


def wait_for_banner(page, contains: str | None) -> None:
    expected = "b && !b.hidden" if contains is None else "false"
    page.wait_for_function(
        """([contains, expected]) => { const b = document.getElementById("live-banner");
            return contains === null ? !(b && !b.hidden) : !!(b && !b.hidden && b.textContent.includes(contains)); }""",
        arg=[contains, expected],
        timeout=10_000,
    )


def ages(page) -> dict:
    return page.evaluate("""() => Object.fromEntries([...document.querySelectorAll("[data-live-address]")]
        .map((el) => [el.id, el.classList.contains("live-stale") ? el.dataset.age : null]))""")


def test_a_lost_server_shows_the_banner_and_ages_the_values_until_it_comes_back(page):
    server = ScriptedServer(page)
    page.goto(f"{SITE}/")
    server.wait_for(lambda m: "subscribe" in m, "a subscription")
    full = {"T:A": value(1.0, "1.00 mA"), "T:MAJOR": value(71.5, "71.5 degC", severity=2), "T:PRE": value(7.5, "7.5 A")}
    server.send_and_wait_for_ack(1, True, full)
    server.send_health(stale_after=2.0)
    page.wait_for_timeout(300)
    assert banner(page) is None and ages(page)["a1"] is None

    server.down = True
    server.sockets[-1].close()
    wait_for_banner(page, "Connection to the server lost: reconnecting")
    page.wait_for_function("() => document.querySelector('#a1').dataset.age !== undefined", timeout=10_000)
    first = ages(page)
    # Greyed past the threshold (2 s) all at once: each value was current at the same moment.
    assert {key for key, age in first.items() if age} == {"a1", "a2", "n-a", "major", "pre"}
    assert len({first[key] for key in ("a1", "a2", "n-a", "major", "pre")}) == 1
    assert re.fullmatch(r"[2-9] s old", first["a1"]), first
    assert "live-stale" in classes(page, "#major") and "alarm-major" in classes(page, "#major")
    assert re.fullmatch(r"\d s old: no news that this value is current", page.locator("#a1").get_attribute("title"))
    assert page.locator("#a1").text_content() == "1.00 mA"  # the value stays, marked old
    assert page.locator("#pre").get_attribute("title").startswith("T:PRE, live; ")  # the page's title first
    page.wait_for_function(  # the age counts up, with no message
        "(first) => document.querySelector('#a1').dataset.age !== first", arg=first["a1"], timeout=10_000
    )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "live_js_server_lost.png")

    server.down = False
    server.wait_for(lambda m: "subscribe" in m, "a subscription after the server came back")
    server.send_and_wait_for_ack(1, True, full)
    server.send_health(stale_after=2.0)
    wait_for_banner(page, None)
    assert all(age is None for age in ages(page).values())
    assert page.locator("#a1").get_attribute("title") is None
    assert page.locator("#pre").get_attribute("title") == "T:PRE, live"


def test_a_stale_or_missing_monitor_shows_the_banner_and_ages_values_from_its_last_heartbeat(page):
    server = ScriptedServer(page)
    page.goto(f"{SITE}/")
    server.wait_for(lambda m: "subscribe" in m, "a subscription")
    server.send_and_wait_for_ack(1, True, {"T:A": value(1.0, "1.00 mA")})
    server.send_health(age=0.5, stale_after=2.0)
    page.wait_for_timeout(200)
    assert banner(page) is None

    server.send_health("ok", age=1.5, stale_after=2.0)  # the monitor wrote nothing since
    server.send_health("stale", age=6.0, stale_after=2.0)
    wait_for_banner(page, "The monitor is stale: its last heartbeat was 6 s ago")
    page.wait_for_function("() => document.querySelector('#a1').classList.contains('live-stale')", timeout=5_000)
    server.send_health("missing", age=None, stale_after=2.0)
    wait_for_banner(page, "No monitor is running")
    server.send_health("unknown", age=None, stale_after=2.0)
    wait_for_banner(page, "The server cannot read the live values")

    server.send_health("ok", age=0.3, stale_after=2.0)
    wait_for_banner(page, None)
    assert ages(page)["a1"] is None


def test_an_open_socket_that_goes_quiet_shows_the_banner(page):
    server = ScriptedServer(page)
    page.goto(f"{SITE}/")
    server.wait_for(lambda m: "subscribe" in m, "a subscription")
    server.send_and_wait_for_ack(1, True, {"T:A": value(1.0, "1.00 mA")})
    server.send_health(stale_after=2.0)
    wait_for_banner(page, "No news from the server for ")
    assert "live-stale" in classes(page, "#a1")
    server.send_health(stale_after=2.0)
    wait_for_banner(page, None)


def test_a_page_that_never_reaches_the_server_says_so_and_keeps_loading_marks(page):
    server = ScriptedServer(page)
    server.down = True
    page.goto(f"{SITE}/")
    wait_for_banner(page, "No connection to the server: reconnecting")
    assert page.locator("#a1").text_content() == ""  # still "…" (loading), not a value
    # A value the server rendered with the page ages from the page's load (threshold 5 s before any
    # health message says otherwise); the cells still loading have no age.
    page.wait_for_function("() => document.querySelector('#pre').dataset.age !== undefined", timeout=15_000)
    assert {key: age for key, age in ages(page).items() if age} == {"pre": ages(page)["pre"]}
    assert re.fullmatch(r"\d s old", ages(page)["pre"]) and int(ages(page)["pre"][0]) >= 5
