"""The History control on the pages' rows (static/squirrel/history.js): on the snapshot page, the
live table and the compare page when an archiver is configured, with what the chart needs (the
endpoint, the snapshot's time, the saved value, the kind, whether there is a readback); nowhere
without one. The chart itself is tested in the browser (squirrel_site/tests/test_history_browser.py)."""

import re

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def archived(page_data, settings):
    settings.ARCHIVERS = [("sim", "http://127.0.0.1:9")]  # configured; the pages never ask it


@pytest.fixture
def page_data(client, admin_user, make_pvs, make_snapshot, live_values):
    client.force_login(admin_user)
    [quad] = make_pvs("Q1:SP", readback_address="Q1:RB")
    [plain] = make_pvs("S1:SP")
    snapshot = make_snapshot("before", {"Q1:SP": 1.25, "S1:SP": "text", "GONE:SP": 3.0})
    live_values({"Q1:SP": 1.5, "Q1:RB": 1.4, "S1:SP": "text"})
    return snapshot, quad, plain


def buttons(html: str) -> dict[str, str]:
    """Each History button's title's address -> the button's markup."""
    return {
        re.search(r'title="The archived history of ([^"]+)"', button).group(1): button
        for button in re.findall(r"<button[^>]*data-history-url[^>]*>∿</button>", html)
    }


def test_the_snapshot_page_has_a_history_control_per_registry_pv(client, page_data, archived):
    snapshot, quad, plain = page_data
    html = client.get(f"/snapshots/{snapshot.pk}/").content.decode()
    found = buttons(html)
    assert set(found) == {"Q1:SP", "S1:SP"}  # GONE:SP is not in the registry: no history to ask for
    q1 = found["Q1:SP"]
    assert f'data-history-url="/api/v1/pvs/{quad.pk}/history/"' in q1
    assert f'data-history-at="{int(snapshot.created_at.timestamp())}"' in q1
    assert 'data-history-saved="1.25"' in q1 and 'data-history-kind="float"' in q1
    assert 'data-history-readback="1"' in q1 and 'type="button"' in q1  # never submits the restore form
    assert "data-history-readback" not in found["S1:SP"]
    assert "/static/vendor/uplot/uPlot.iife.min.js" in html and "/static/squirrel/history.js" in html
    assert "/static/vendor/uplot/uPlot.min.css" in html


def test_the_live_table_and_the_compare_page_have_it_too(client, page_data, archived):
    snapshot, quad, plain = page_data
    live = buttons(client.get("/live/").content.decode())
    assert set(live) == {"Q1:SP", "S1:SP"} and "data-history-at" not in live["Q1:SP"]
    compare = buttons(client.get("/compare/", {"a": snapshot.pk, "b": "live"}).content.decode())
    assert set(compare) == {"Q1:SP", "S1:SP"}
    assert f'data-history-at="{int(snapshot.created_at.timestamp())}"' in compare["Q1:SP"]
    assert 'data-history-saved="1.25"' in compare["Q1:SP"]


def test_without_an_archiver_no_page_shows_it(client, settings, page_data):
    settings.ARCHIVERS = []
    snapshot, _, _ = page_data
    for path in (f"/snapshots/{snapshot.pk}/", "/live/", f"/compare/?a={snapshot.pk}&b=live"):
        html = client.get(path).content.decode()
        assert "data-history-url" not in html and "uPlot" not in html, path
