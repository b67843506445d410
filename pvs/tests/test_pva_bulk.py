"""The pvAccess layer: conversions of every normative type (pure, p4p Values built here) and the
simulated pvAccess server read, written and watched through it, with p4p's own client in another
process reading the server back (marker `ioc`)."""

import json
import math
import time

import pytest
from p4p.nt import NTEnum, NTScalar, NTTable

from pvs import pva_bulk, sim_pva
from pvs.epics_io import DISCONNECTED, PutRequest
from squirrel_site.testing import eventually
from squirrel_site.testing.pva import KINDS

STAMP = 1_700_000_000.25


def test_a_double_with_alarm_timestamp_and_display():
    raw = NTScalar("d", display=True, form=True).wrap(
        {
            "value": 2.5,
            "display.units": "mA",
            "display.precision": 3,
            "display.limitLow": -10.0,
            "display.limitHigh": 10.0,
            "alarm.status": 1,
            "alarm.severity": 2,
        },
        timestamp=STAMP,
    )
    value, meta = pva_bulk.decode("A:D", raw, received=5.0)
    assert (value.address, value.kind, value.value, value.status, value.severity) == ("A:D", "float", 2.5, 1, 2)
    assert value.timestamp == pytest.approx(STAMP) and value.received == 5.0 and value.connected
    assert (meta.kind, meta.count, meta.units, meta.precision) == ("float", 1, "mA", 3)
    assert (meta.lower_limit, meta.upper_limit, meta.enum_labels) == (-10.0, 10.0, None)


@pytest.mark.parametrize(
    ("code", "given", "kind", "expected"),
    [
        ("i", -7, "int", -7),
        ("l", 2**40, "int", 2**40),
        ("?", True, "int", 1),
        ("s", "ü mode", "string", "ü mode"),
        ("ad", [1.0, math.inf], "float_array", [1.0, math.inf]),
        ("ai", [1, -2], "int_array", [1, -2]),
        ("a?", [True, False], "int_array", [1, 0]),
        ("as", ["a", ""], "string_array", ["a", ""]),
    ],
)
def test_scalars_and_arrays_read_as_their_kind(code, given, kind, expected):
    value, meta = pva_bulk.decode("A:B", NTScalar(code).wrap(given, timestamp=STAMP))
    assert (value.kind, value.value, meta.kind) == (kind, expected, kind)
    assert type(value.value) is type(expected)
    assert meta.count == (len(expected) if isinstance(expected, list) else 1)
    assert (meta.units, meta.precision, meta.lower_limit) == ("", None, None)  # no display field


def test_equal_display_limits_are_no_limits():
    raw = NTScalar("d", display=True, form=True).wrap({"value": 1.0, "display.units": "V"})
    _, meta = pva_bulk.decode("A:B", raw)
    assert (meta.units, meta.lower_limit, meta.upper_limit) == ("V", None, None)


def test_an_enum_reads_as_its_index_with_the_choices_as_labels():
    raw = NTEnum().wrap({"value.index": 2, "value.choices": ["Off", "On", "Standby"]}, timestamp=STAMP)
    value, meta = pva_bulk.decode("A:E", raw)
    assert (value.kind, value.value, meta.enum_labels) == ("enum", 2, ["Off", "On", "Standby"])


def test_a_never_processed_value_has_no_timestamp():
    value, _ = pva_bulk.decode("A:B", NTScalar("d").wrap(1.0))
    assert value.timestamp == 0.0


def test_a_table_is_kept_as_typed_json():
    raw = NTTable([("name", "s"), ("x", "d")]).wrap(
        [{"name": "a", "x": 1.5}, {"name": "b", "x": -2.0}], timestamp=STAMP
    )
    value, meta = pva_bulk.decode("A:T", raw)
    assert value.kind == meta.kind == "structure" and value.timestamp == pytest.approx(STAMP)
    typed = json.loads(value.value)
    assert typed["id"] == "epics:nt/NTTable:1.0"
    assert typed["value"]["labels"] == ["name", "x"]
    assert typed["value"]["value"] == {"name": ["a", "b"], "x": [1.5, -2.0]}
    assert ["value", ["S", "structure", [["name", "as"], ["x", "ad"]]]] in typed["type"]
    assert not {"alarm", "timeStamp"} & {name for name, _ in typed["type"]}  # in the Value's own fields


@pytest.mark.parametrize(
    ("nt", "first", "then"),
    [
        (NTScalar("d", display=True, form=True), {"value": 1.5, "display.units": "A"}, {"value": -3.25}),
        (NTScalar("?"), True, False),
        (NTScalar("as"), ["a"], ["b", "c"]),
        (NTEnum(), {"value.index": 1, "value.choices": ["Off", "On"]}, {"value.index": 0}),
        (NTTable([("x", "d")]), [{"x": 1.0}], [{"x": 2.0}, {"x": 3.0}]),
    ],
)
def test_a_later_update_reads_as_a_whole_decode_would(nt, first, then):
    previous, _ = pva_bulk.decode("A:B", nt.wrap(first, timestamp=STAMP))
    raw = nt.wrap(then, timestamp=STAMP + 1)
    raw["alarm.severity"], raw["alarm.status"] = 1, 3
    assert pva_bulk.decode_next(previous, raw, 9.0) == pva_bulk.decode("A:B", raw, 9.0)[0]


# Against the simulated pvAccess server.

WRITABLE = [t for t in sim_pva.TYPES if t != sim_pva.TABLE]
NEW_VALUES = {
    sim_pva.DOUBLE: 12.25,
    sim_pva.INT: -42,
    sim_pva.BOOL: 0,
    sim_pva.STRING: "written ü",
    sim_pva.DOUBLE_ARRAY: [0.5, -1.5, 2.0],
    sim_pva.STRING_ARRAY: ["x", "y z"],
    sim_pva.ENUM: 3,
}


@pytest.fixture
def service(pva_server):
    contexts = pva_bulk.make_contexts(pva_server.conf, 2)
    service = pva_bulk.PvaService(contexts)
    yield service
    service.close()
    for context in contexts:
        context.close()


@pytest.fixture
def put_back(pva_server):
    """Each test's PVs hold their first values again afterwards (the server lives for the session)."""
    touched = []
    yield touched.extend
    if touched:
        pva_server.pvput({pv.name: _field_value(pv.type, pv.value) for pv in touched})


def _field_value(kind, value):
    return {"value.index": value} if kind == sim_pva.ENUM else {"value": value}


def _plain(kind, value):
    return int(value) if kind == sim_pva.BOOL else value


@pytest.mark.ioc
def test_every_type_reads_as_the_server_holds_it(pva_server, service):
    pvs = [pva_server.of_type(t) for t in sim_pva.TYPES]
    results = service.read([pv.name for pv in pvs] + ["SIM:PVA:NOBODY"], timeout=5)
    assert results["SIM:PVA:NOBODY"].error == DISCONNECTED  # no server answers: as Channel Access says
    served = pva_server.pvget(pv.name for pv in pvs)
    for pv in pvs:
        reading = results[pv.name].reading
        assert reading is not None, results[pv.name]
        assert reading.kind == KINDS[pv.type], pv
        assert reading.timestamp == pytest.approx(served[pv.name]["timeStamp"]["secondsPastEpoch"], abs=1)
        if pv.type == sim_pva.ENUM:
            assert reading.value == served[pv.name]["value"]["index"]
        elif pv.type == sim_pva.TABLE:
            assert json.loads(reading.value)["value"]["value"] == served[pv.name]["value"]
        else:
            assert reading.value == _plain(pv.type, served[pv.name]["value"])


@pytest.mark.ioc
def test_puts_with_completion_of_every_writable_type_reach_the_server(pva_server, service, put_back):
    pvs = [pva_server.of_type(t) for t in WRITABLE]
    put_back(pvs)
    requests = [PutRequest(pv.name, NEW_VALUES[pv.type], wait=True) for pv in pvs]
    before = time.time()
    results = service.put(requests, timeout=5)
    assert all(r.ok and r.completed for r in results.values()), results
    served = pva_server.pvget(pv.name for pv in pvs)
    for pv in pvs:
        got = served[pv.name]["value"]
        assert (got["index"] if pv.type == sim_pva.ENUM else _plain(pv.type, got)) == NEW_VALUES[pv.type], pv
        # The simulated server stamps a put when it applies it, as an IOC does.
        assert served[pv.name]["timeStamp"]["secondsPastEpoch"] >= int(before), pv


@pytest.mark.ioc
def test_puts_go_out_at_most_max_outstanding_at_a_time(pva_server, service, put_back, monkeypatch):
    doubles = [pv for pv in pva_server.pvs if pv.type == sim_pva.DOUBLE][:12]
    put_back(doubles)
    started, unfinished, most = [], [0], [0]
    real_operation, real_finished = pva_bulk._p4p.ClientOperation, pva_bulk._finished

    def counting_operation(*args, **kwargs):
        unfinished[0] += 1
        most[0] = max(most[0], unfinished[0])
        started.append(args[1])
        return real_operation(*args, **kwargs)

    def counting_finished(ready, index, code, message, value):
        unfinished[0] -= 1
        real_finished(ready, index, code, message, value)

    monkeypatch.setattr(pva_bulk._p4p, "ClientOperation", counting_operation)
    monkeypatch.setattr(pva_bulk, "_finished", counting_finished)
    requests = [PutRequest(pv.name, 100.0 + i, wait=True) for i, pv in enumerate(doubles)]
    results = service.put(requests, timeout=5, max_outstanding=3)
    assert all(r.ok and r.completed for r in results.values()), results
    assert len(started) == len(doubles) and most[0] <= 3
    served = pva_server.pvget(pv.name for pv in doubles)
    assert [served[pv.name]["value"] for pv in doubles] == [100.0 + i for i in range(len(doubles))]


@pytest.mark.ioc
def test_a_put_to_a_channel_no_server_answers_is_disconnected_and_not_sent(pva_server, service):
    double = pva_server.of_type(sim_pva.DOUBLE)
    results = service.put(
        [PutRequest("pva://SIM:PVA:NOBODY", 1.0, wait=True), PutRequest(double.name, double.value, wait=True)],
        timeout=1,
    )
    assert results["pva://SIM:PVA:NOBODY"].error == DISCONNECTED and not results["pva://SIM:PVA:NOBODY"].ok
    assert results[double.name].ok


def test_an_operation_without_an_answer_says_why():
    assert pva_bulk._missing(reached=False, sent=True) == DISCONNECTED
    assert pva_bulk._missing(reached=True, sent=True) == "timeout"  # connected, sent: may be applied
    assert pva_bulk._missing(reached=False, sent=False) == pva_bulk.NOT_SENT


@pytest.mark.ioc
def test_an_enum_takes_a_label_and_refuses_an_unknown_one(pva_server, service, put_back):
    enum = pva_server.of_type(sim_pva.ENUM)
    put_back([enum])
    assert service.put([PutRequest(enum.name, "Standby", wait=True)])[enum.name].ok
    assert pva_server.pvget([enum.name])[enum.name]["value"]["index"] == sim_pva.ENUM_CHOICES.index("Standby")
    refused = service.put([PutRequest(enum.name, "Sideways", wait=True)])[enum.name]
    assert not refused.ok and "'Sideways' is not one of the labels" in refused.error


@pytest.mark.ioc
def test_a_table_is_never_written_and_a_number_takes_no_text(pva_server, service):
    table, double = pva_server.of_type(sim_pva.TABLE), pva_server.of_type(sim_pva.DOUBLE)
    before = pva_server.pvget([table.name, double.name])
    results = service.put([PutRequest(table.name, 1, wait=True), PutRequest(double.name, "high", wait=True)])
    assert not results[table.name].ok and pva_bulk.NOT_WRITABLE in results[table.name].error
    assert not results[double.name].ok and "cannot put 'high'" in results[double.name].error
    after = pva_server.pvget([table.name, double.name])
    assert after[table.name]["value"] == before[table.name]["value"]
    assert after[double.name]["value"] == before[double.name]["value"]


@pytest.mark.ioc
def test_subscriptions_report_connection_metadata_and_every_change(pva_server, put_back):
    pvs = [pva_server.of_type(t) for t in sim_pva.TYPES]
    contexts = pva_bulk.make_contexts(pva_server.conf, 2)
    channels = pva_bulk.ChannelSet(contexts)
    try:
        channels.add(pv.name for pv in pvs)
        latest, metadata, connected = {}, {}, set()

        def drain(predicate):
            def step():
                result = channels.poll(0.1)
                latest.update((v.address, v) for v in result.readings)
                metadata.update((m.address, m) for m in result.metadata)
                connected.update(result.connected)
                return predicate()

            return step

        eventually(drain(lambda: len(connected) == len(pvs)), 20, what="every channel connected")
        assert channels.connected_count() == len(pvs)
        double, enum = pva_server.of_type(sim_pva.DOUBLE), pva_server.of_type(sim_pva.ENUM)
        assert (metadata[double.name].units, metadata[double.name].precision) == (double.units, double.precision)
        assert (metadata[double.name].lower_limit, metadata[double.name].upper_limit) == (double.low, double.high)
        assert metadata[enum.name].enum_labels == list(sim_pva.ENUM_CHOICES)
        assert {a: v.kind for a, v in latest.items()} == {pv.name: KINDS[pv.type] for pv in pvs}

        writable = [pv for pv in pvs if pv.type != sim_pva.TABLE]
        put_back(writable)
        pva_server.pvput({pv.name: _field_value(pv.type, NEW_VALUES[pv.type]) for pv in writable})
        eventually(
            drain(lambda: all(latest[pv.name].value == NEW_VALUES[pv.type] for pv in writable)),
            20,
            what="every change seen",
        )
    finally:
        channels.close()
        for context in contexts:
            context.close()


@pytest.mark.ioc
def test_peers_name_the_server_each_connected_channel_is_on(restartable_pva_server):
    """The monitor counts pvAccess channels per server from this (p4p's subscriptions do not say)."""
    pva_server = restartable_pva_server
    pvs = [pva_server.of_type(t) for t in (sim_pva.DOUBLE, sim_pva.ENUM, sim_pva.TABLE)]
    addresses = [f"pva://{pv.name}" for pv in pvs]
    contexts = pva_bulk.make_contexts(pva_server.conf, 2)  # channels on both contexts
    channels = pva_bulk.ChannelSet(contexts)
    try:
        channels.add([*addresses, "pva://NO:SUCH:PV"])
        eventually(lambda: channels.poll(0.1) is not None and channels.connected_count() == 3, 20, what="connected")
        # The channel no server answers is not there; each connected one names the server.
        assert channels.peers() == dict.fromkeys(addresses, f"127.0.0.1:{pva_server.port}")
        pva_server.stop()
        eventually(lambda: channels.poll(0.1) is not None and channels.connected_count() == 0, 10, what="gone")
        assert channels.peers() == {}
    finally:
        channels.close()
        for context in contexts:
            context.close()


# The client's settings and its background closing.


@pytest.mark.parametrize(("given", "count"), [("", pva_bulk.DEFAULT_CONTEXTS), ("8", 8), (" 1 ", 1)])
def test_the_context_count_comes_from_the_environment(monkeypatch, given, count):
    monkeypatch.setenv("SQUIRREL_PVA_CONTEXTS", given)
    assert pva_bulk._context_count() == count


@pytest.mark.parametrize("given", ["four", "0", "257"])
def test_a_context_count_that_is_no_count_is_refused_saying_why(monkeypatch, given):
    monkeypatch.setenv("SQUIRREL_PVA_CONTEXTS", given)
    with pytest.raises(pva_bulk.PvAccessError, match="SQUIRREL_PVA_CONTEXTS must be"):
        pva_bulk._context_count()


class _Closable:
    def __init__(self):
        self.closed = 0

    def close(self):
        self.closed += 1


def test_finished_operations_are_closed_once_each_in_the_background():
    closer = pva_bulk._Closer()
    batches = [[_Closable() for _ in range(50)] for _ in range(3)]
    for batch in batches:
        closer.close_later(batch)
    assert closer.wait(5)
    assert [item.closed for batch in batches for item in batch] == [1] * 150
    closer.close_now()  # nothing left: closes nothing again
    assert {item.closed for batch in batches for item in batch} == {1}


def test_nothing_is_closed_while_a_read_or_put_is_under_way():
    closer = pva_bulk._Closer()
    items = [_Closable() for _ in range(10)]
    with closer.busy():
        closer.close_later(items)
        assert not closer.wait(0.3)  # still pending: the read or put has the network threads
        assert {item.closed for item in items} == {0}
    assert closer.wait(5)
    assert {item.closed for item in items} == {1}


@pytest.mark.ioc
def test_reads_one_after_another_each_answer_and_close_their_subscriptions(pva_server, service):
    pvs = [pva_server.of_type(t) for t in sim_pva.TYPES]
    names = [pv.name for pv in pvs]
    first = service.read(names, timeout=5)
    second = service.read([f"pva://{name}" for name in names], timeout=5)
    assert all(result.reading is not None for result in first.values()), first
    assert {a.removeprefix("pva://"): r.reading.value for a, r in second.items()} == {
        a: r.reading.value for a, r in first.items()
    }
    assert pva_bulk._closer.wait(5)


def _kept_service(pva_server, **bounds):
    contexts = pva_bulk.make_contexts(pva_server.conf, 2)
    return pva_bulk.PvaService(contexts, **bounds), contexts


@pytest.mark.ioc
def test_a_read_keeps_its_subscriptions_and_the_next_read_answers_from_them(pva_server, put_back):
    service, contexts = _kept_service(pva_server, keep_seconds=60)
    double = pva_server.of_type(sim_pva.DOUBLE)
    put_back([double])
    names = [pva_server.of_type(t).name for t in sim_pva.TYPES]
    try:
        first = service.read(names, timeout=5)
        assert all(result.reading is not None for result in first.values()), first
        assert service.kept_count() == len(names)
        again = service.read(names, timeout=5)
        assert service.kept_count() == len(names)  # no new subscription
        assert {a: r.reading.value for a, r in again.items()} == {a: r.reading.value for a, r in first.items()}
        # The server's change reaches the open subscription: the next read has it.
        pva_server.pvput({double.name: {"value": 77.5}})
        eventually(lambda: service.read([double.name])[double.name].reading.value == 77.5, 10, what="the new value")
        # A put through the service itself: once it completed, a read has the value.
        assert service.put([PutRequest(double.name, 12.25, wait=True)])[double.name].ok
        eventually(lambda: service.read([double.name])[double.name].reading.value == 12.25, 10, what="the put")
    finally:
        service.close()
        for context in contexts:
            context.close()
    assert service.kept_count() == 0


@pytest.mark.ioc
def test_a_context_keeps_at_most_its_bound_and_the_others_still_answer(pva_server):
    service, contexts = _kept_service(pva_server, keep_per_context=1)
    names = [pv.name for pv in pva_server.pvs[:10]]
    try:
        results = service.read(names, timeout=5)
        assert all(result.reading is not None for result in results.values()), results
        assert service.kept_count() == 2  # one per context, the other 8 closed after their answer
        assert pva_bulk._closer.wait(5)
        assert all(r.reading is not None for r in service.read(names, timeout=5).values())
        assert service.kept_count() == 2
    finally:
        service.close()
        for context in contexts:
            context.close()


@pytest.mark.ioc
def test_subscriptions_no_read_used_for_the_keep_time_are_closed(pva_server):
    service, contexts = _kept_service(pva_server, keep_seconds=30)
    names = [pv.name for pv in pva_server.pvs[:5]]
    try:
        service.read(names, timeout=5)
        assert service.sweep() == 0  # used just now
        service.keep_seconds = 0.0  # every one now unused for longer than that
        assert service.sweep() == 5
        assert service.kept_count() == 0
        service.keep_seconds = 30.0
        assert all(r.reading is not None for r in service.read(names, timeout=5).values())  # subscribed again
        assert service.kept_count() == 5
    finally:
        service.close()
        for context in contexts:
            context.close()


@pytest.mark.ioc
def test_keep_seconds_zero_keeps_nothing(pva_server):
    service, contexts = _kept_service(pva_server, keep_seconds=0)
    names = [pv.name for pv in pva_server.pvs[:5]]
    try:
        assert all(r.reading is not None for r in service.read(names, timeout=5).values())
        assert service.kept_count() == 0
    finally:
        service.close()
        for context in contexts:
            context.close()


@pytest.mark.ioc
def test_a_kept_subscription_whose_server_stops_reads_disconnected_then_its_value_again(restartable_pva_server):
    server = restartable_pva_server
    service, contexts = _kept_service(server, keep_seconds=60)
    name = server.of_type(sim_pva.DOUBLE).name
    try:
        assert service.read([name], timeout=5)[name].reading is not None
        server.stop()
        # Never the last value from before: the disconnection ends it.
        eventually(lambda: service.read([name], timeout=0.5)[name].error == DISCONNECTED, 15, what="disconnected")
        server.start()
        eventually(lambda: service.read([name], timeout=2)[name].reading is not None, 30, what="the value back")
        assert service.kept_count() == 1
    finally:
        service.close()
        for context in contexts:
            context.close()


@pytest.mark.ioc
def test_a_server_with_updates_per_second_changes_its_doubles_and_stamps_each_change(tmp_path):
    from squirrel_site.testing.pva import SimPva

    server = SimPva(tmp_path, count=20, args=("--updates-per-second", "200"))
    contexts = pva_bulk.make_contexts(server.conf, 1)
    channels = pva_bulk.ChannelSet(contexts)
    doubles = [pv.name for pv in server.pvs if pv.type == sim_pva.DOUBLE]
    others = [pv.name for pv in server.pvs if pv.type == sim_pva.INT]
    try:
        channels.add(doubles + others)
        seen: dict[str, list] = {}

        def three_of_each() -> bool:
            for reading in channels.poll(0.1).readings:
                seen.setdefault(reading.address, []).append(reading)
            return all(len(seen.get(name, ())) >= 3 for name in doubles)

        eventually(three_of_each, 15, interval=0.0, what="three values of every double")
        assert all(len(seen.get(name, ())) == 1 for name in others)  # only the doubles change
        for name in doubles:
            later = seen[name][1:]
            assert all(abs(r.timestamp - r.received) < 5 for r in later)  # stamped when posted
            assert len({r.value for r in seen[name]}) > 1
    finally:
        channels.close()
        for context in contexts:
            context.close()
        server.stop()


@pytest.mark.parametrize("given", ["-1", "1000001"])
def test_updates_per_second_out_of_range_is_refused_saying_why(given):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match=f"--updates-per-second must be between 0 and 1000000, not {given}"):
        call_command("run_sim_pva", "--port", "1", "--updates-per-second", given)


@pytest.mark.parametrize(("given", "message"), [("x", "must be a number, not 'x'"), ("-1", "between 0 and 86400")])
def test_a_keep_time_that_is_no_time_is_refused_saying_why(monkeypatch, given, message):
    monkeypatch.setenv("SQUIRREL_PVA_KEEP_SECONDS", given)
    with pytest.raises(pva_bulk.PvAccessError, match=message):
        pva_bulk._env_number("SQUIRREL_PVA_KEEP_SECONDS", 300.0, 0.0, 86_400.0)
    monkeypatch.setenv("SQUIRREL_PVA_KEEP_SECONDS", "")
    assert pva_bulk._env_number("SQUIRREL_PVA_KEEP_SECONDS", 300.0, 0.0, 86_400.0) == 300.0
