"""pvs.archiver against canned answers: its HTTP layer (`_request`) replaced, nothing else.

What each archiver was asked (method, URL, body) is recorded; the answers are the appliance's
documented JSON, or what a broken archiver sends instead. The real process is
test_archiver_process.py's (`run_sim_archiver` recording off the simulated IOC).
"""

import json
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest

from pvs import archiver
from pvs.archiver import Archived, ArchiverError, NotArchived
from squirrel_site.env import SettingError, env_named_urls

AT = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
AT_SECS = int(AT.timestamp())


def sample(val, secs=AT_SECS - 30, nanos=500_000_000, severity=0, status=0):
    return {"secs": secs, "nanos": nanos, "val": val, "severity": severity, "status": status}


class Canned:
    """The HTTP layer: an answer (bytes, or an exception to raise) per archiver base URL."""

    def __init__(self, answers: dict):
        self.answers, self.requests = answers, []

    def __call__(self, method, url, body, timeout):
        self.requests.append((method, url, None if body is None else json.loads(body), timeout))
        for base, answer in self.answers.items():
            if url.startswith(base):
                if callable(answer):
                    answer = answer(json.loads(body) if body else None)
                if isinstance(answer, Exception):
                    raise answer
                return answer if isinstance(answer, bytes) else json.dumps(answer).encode()
        raise AssertionError(f"asked an archiver that is not configured: {url}")


@pytest.fixture
def two_archivers(settings):
    settings.ARCHIVERS = [("main", "http://main:17668"), ("old", "http://old:17668")]
    settings.ARCHIVER_BATCH = 2


def use(monkeypatch, answers) -> Canned:
    canned = Canned(answers)
    monkeypatch.setattr(archiver, "_request", canned)
    return canned


def test_values_at_posts_the_names_in_batches_and_reads_each_kind(monkeypatch, two_archivers):
    answer = {
        "F": sample(1.5),
        "I": sample(7),
        "E": sample(2),
        "S": sample("on"),
        "A": sample([1.0, 2.5]),
        "SA": sample(["a", "b"]),
        "pva://P": sample(3.25),
    }
    canned = use(monkeypatch, {"http://main": lambda names: {n: answer[n] for n in names if n in answer}})
    names = ["F", "I", "E", "S", "A", "SA", "pva://P"]
    got = archiver.values_at(names, AT, kinds={"E": "enum"})
    assert list(got) == names
    assert {name: (r.value.kind, r.value.value) for name, r in got.items()} == {
        "F": ("float", 1.5),
        "I": ("int", 7),
        "E": ("enum", 2),
        "S": ("string", "on"),
        "A": ("float_array", [1.0, 2.5]),
        "SA": ("string_array", ["a", "b"]),
        "pva://P": ("float", 3.25),
    }
    first = got["F"]
    assert first.archiver == "main" and first.age == pytest.approx(29.5)
    assert first.value.timestamp == pytest.approx(AT_SECS - 29.5)
    # Four batches of two, the pvAccess address as it is, the time with its offset.
    assert [body for _, _, body, _ in canned.requests] == [names[0:2], names[2:4], names[4:6], names[6:]]
    method, url, _, _ = canned.requests[0]
    parts = urlsplit(url)
    assert method == "POST" and parts.path == "/retrieval/data/getDataAtTime"
    assert parse_qs(parts.query) == {"at": ["2026-03-01T02:00:00.000+00:00"], "includeProxies": ["true"]}


def test_the_next_archiver_is_asked_only_for_what_the_first_lacked(monkeypatch, two_archivers):
    canned = use(
        monkeypatch,
        {"http://main": {"A": sample(1.0)}, "http://old": lambda names: {"B": sample(2.0)} if "B" in names else {}},
    )
    got = archiver.values_at(["A", "B", "C"], AT)
    assert got["A"].archiver == "main" and got["B"].archiver == "old"
    assert got["C"] == NotArchived("C", got["C"].reason)
    assert got["C"].reason.startswith("not archived by any of: main, old")
    asked_old = [body for _, url, body, _ in canned.requests if url.startswith("http://old")]
    assert asked_old == [["B", "C"]]


def test_a_time_in_another_zone_is_sent_with_its_offset(monkeypatch, two_archivers):
    canned = use(monkeypatch, {"http://main": {}, "http://old": {}})
    archiver.values_at(["A"], datetime(2026, 3, 1, 3, 0, tzinfo=timezone(timedelta(hours=1))))
    assert "at=2026-03-01T03%3A00%3A00.000%2B01%3A00" in canned.requests[0][1]
    with pytest.raises(ValueError, match="time zone"):
        archiver.values_at(["A"], datetime(2026, 3, 1, 3, 0))


def test_every_archiver_unreachable_is_an_error_naming_each_and_why(monkeypatch, two_archivers):
    use(monkeypatch, {"http://main": archiver._Unanswered("ConnectionRefusedError: refused"), "http://old": b"<html>"})
    with pytest.raises(ArchiverError) as raised:
        archiver.values_at(["A", "B", "C"], AT)
    message = str(raised.value)
    assert "No archiver answered for 3 PVs" in message
    assert "main: ConnectionRefusedError: refused" in message and "old: its answer is not JSON" in message


def test_one_archiver_down_leaves_the_other_answering_and_says_so(monkeypatch, two_archivers):
    use(monkeypatch, {"http://main": archiver._Unanswered("no answer within 30.0 s"), "http://old": {"A": sample(1)}})
    got = archiver.values_at(["A", "B"], AT)
    assert isinstance(got["A"], Archived) and got["A"].archiver == "old"
    assert "not archived by any of: old" in got["B"].reason and "main did not answer: no answer" in got["B"].reason


def test_an_answer_of_the_wrong_shape_counts_as_no_answer(monkeypatch, settings):
    settings.ARCHIVERS = [("main", "http://main:1")]
    use(monkeypatch, {"http://main": ["A"]})
    with pytest.raises(ArchiverError, match="not the documented getDataAtTime object"):
        archiver.values_at(["A"], AT)


def test_unreadable_and_later_samples_are_not_archived_with_the_reason(monkeypatch, settings):
    settings.ARCHIVERS = [("main", "http://main:1")]
    answer = {
        "N": sample(None),
        "O": sample({"x": 1}),
        "T": {"val": 1.0},
        "L": sample(1.0, secs=AT_SECS + 60),
        "X": "garbage",
    }
    use(monkeypatch, {"http://main": answer})
    got = archiver.values_at(list(answer), AT)
    assert all(isinstance(result, NotArchived) for result in got.values())
    assert "no kind Squirrel reads" in got["N"].reason and "no kind" in got["O"].reason
    assert "no time" in got["T"].reason and "not an object" in got["X"].reason
    assert got["L"].reason.startswith("no sample at or before 2026-03-01T02:00:00.000+00:00")


def test_no_archiver_configured_is_an_error(settings):
    settings.ARCHIVERS = []
    assert archiver.archivers() == []
    with pytest.raises(ArchiverError, match="SQUIRREL_ARCHIVER_URL"):
        archiver.values_at(["A"], AT)


def test_history_reads_the_first_archiver_with_samples(monkeypatch, two_archivers):
    data = [{"meta": {"name": "A", "EGU": "mm", "PREC": "3"}, "data": [sample(1.0), sample(2.0, secs=AT_SECS)]}]
    canned = use(monkeypatch, {"http://main": [], "http://old": data})
    found = archiver.history("A", AT - timedelta(hours=1), AT)
    assert (found.archiver, found.units, found.precision) == ("old", "mm", 3)
    assert [v.value for v in found.samples] == [1.0, 2.0]
    method, url, body, _ = canned.requests[0]
    query = parse_qs(urlsplit(url).query)
    assert method == "GET" and body is None and urlsplit(url).path == "/retrieval/data/getData.json"
    assert query == {"pv": ["A"], "from": ["2026-03-01T01:00:00.000+00:00"], "to": ["2026-03-01T02:00:00.000+00:00"]}


def test_history_of_a_pv_no_archiver_has_is_a_lookup_error(monkeypatch, two_archivers):
    use(monkeypatch, {"http://main": [], "http://old": [{"meta": {"name": "A"}, "data": []}]})
    with pytest.raises(LookupError, match="not archived by any of: main, old"):
        archiver.history("A", AT - timedelta(hours=1), AT)
    use(monkeypatch, {"http://main": archiver._Unanswered("HTTP 500"), "http://old": {"not": "a list"}})
    with pytest.raises(ArchiverError, match="main: HTTP 500; old: its answer is not the documented"):
        archiver.history("A", AT - timedelta(hours=1), AT)


def test_the_http_layer_says_why_nothing_answered():
    # A port nothing listens on (loopback): refused at once.
    with pytest.raises(archiver._Unanswered, match="Connection"):
        archiver._request("GET", "http://127.0.0.1:9/retrieval/data/getData.json", None, 2.0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", []),
        ("http://a:17668", [("a:17668", "http://a:17668")]),
        ("main=http://a:1/, old = https://b:2", [("main", "http://a:1"), ("old", "https://b:2")]),
    ],
)
def test_archiver_urls_are_parsed_with_their_names(monkeypatch, value, expected):
    monkeypatch.setenv("SQUIRREL_ARCHIVER_URL", value)
    assert env_named_urls("SQUIRREL_ARCHIVER_URL") == expected


@pytest.mark.parametrize(
    "value", ["ftp://a:1", "a:1", "http://a:99999", "x=http://a:1,x=http://b:1", "http://a:1/?q=1"]
)
def test_a_bad_archiver_url_stops_the_process_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv("SQUIRREL_ARCHIVER_URL", value)
    with pytest.raises(SettingError, match="SQUIRREL_ARCHIVER_URL"):
        env_named_urls("SQUIRREL_ARCHIVER_URL")
