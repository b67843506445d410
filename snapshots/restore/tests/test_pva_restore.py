"""pvAccess PVs beside Channel Access ones, end to end against the simulated servers: a direct
snapshot of every pvAccess type, the values changed by independent clients, the preview (a
structure skipped, saying why), the restore with completion and verification, undo, an absent
channel, and a run that died mid-stage resumed. What the servers hold is read and written by
p4p's and pyepics' own clients in other processes (squirrel_site.testing.pva, .ioc)."""

import json

import pytest

from pvs import sim, sim_pva
from pvs.models import PV
from snapshots.capture.services import take_snapshot
from snapshots.models import Restore, RestoreAction, RestoreItemStatus, RestoreStatus, SnapshotValue
from snapshots.restore.execute import execute_restore
from snapshots.restore.preview import preview_restore
from snapshots.restore.undo import undo_restore
from squirrel_site.epics_values import Value
from squirrel_site.testing.ioc import Worker, caget_many, caput_many
from squirrel_site.testing.jobs import wait_for_job
from squirrel_site.testing.pva import KINDS, field_value, plain_value, pva_registry
from squirrel_site.testing.restore import CrashingPut, actions, statuses

pytestmark = [pytest.mark.ioc, pytest.mark.django_db(transaction=True)]

WRITABLE = [kind for kind in sim_pva.TYPES if kind != sim_pva.TABLE]


def changed(kind: str, value):
    """A value of `kind` other than `value` (a plain value: an enum's index, a table's columns)."""
    if kind == sim_pva.DOUBLE:
        return round(value + 1.5, 3)
    if kind == sim_pva.INT:
        return value + 3
    if kind == sim_pva.BOOL:
        return 1 - value
    if kind == sim_pva.STRING:
        return value + " changed"
    if kind == sim_pva.DOUBLE_ARRAY:
        return [round(x + 0.5, 4) for x in value]
    if kind == sim_pva.STRING_ARRAY:
        return ["changed", *value[1:]]
    if kind == sim_pva.ENUM:
        return (value + 1) % len(sim_pva.ENUM_CHOICES)
    return {**value, "setpoint": [x + 1.0 for x in value["setpoint"]]}


def names(pvs: dict) -> dict:
    """{type: the wire name (no ``pva://``)} of registry PVs, for the independent client."""
    return {kind: pv.setpoint_address.removeprefix("pva://") for kind, pv in pvs.items()}


def served(pva_server, pvs: dict) -> dict:
    """{type: plain value} as the independent client reads the server."""
    wire = names(pvs)
    answer = pva_server.pvget(wire.values())
    return {kind: plain_value(kind, answer[wire[kind]]) for kind in pvs}


def serve(pva_server, pvs: dict, values: dict) -> None:
    """Write {type: plain value} with the independent client (a table's columns as its value)."""
    wire = names(pvs)
    pva_server.pvput(
        {
            wire[kind]: {"value." + column: list(cells) for column, cells in value.items()}
            if kind == sim_pva.TABLE
            else field_value(kind, bool(value) if kind == sim_pva.BOOL else value)
            for kind, value in values.items()
        }
    )


@pytest.fixture
def pvs(pva_server, transactional_db):
    """One registry PV per simulated pvAccess type, written with completion; the server holds its
    first values again afterwards (it lives for the session)."""
    registry = pva_registry(pva_server, wait_for_completion=True, abs_tolerance=1e-6, device="PVA-TEST")
    # Two stages: the enum (a mode) after the rest.
    PV.objects.filter(pk=registry[sim_pva.ENUM].pk).update(restore_stage=1)
    first = served(pva_server, registry)
    yield registry
    serve(pva_server, registry, first)


class Spy:
    """A service that records every address it was asked to put, passing everything on."""

    def __init__(self, service):
        self.service, self.put_addresses = service, []

    def __getattr__(self, name):
        return getattr(self.service, name)

    def put(self, requests, timeout=5.0, max_outstanding=2000):
        self.put_addresses += [request.address for request in requests]
        return self.service.put(requests, timeout, max_outstanding)


def test_pva_and_ca_pvs_are_saved_previewed_restored_verified_and_undone(
    pva_server, pvs, pva_channels, sim_ioc_registry, user
):
    integer, enum = (sim_ioc_registry.of_kind(kind)[0] for kind in (sim.INT, sim.ENUM))
    ca = [integer.setpoint, enum.setpoint]
    original, original_ca = served(pva_server, pvs), caget_many(ca)
    selection = PV.objects.filter(setpoint_address__in=[pv.setpoint_address for pv in pvs.values()] + ca)
    io = Spy(pva_channels)

    snapshot = take_snapshot(title="Mixed", created_by=user, pvs=selection, mode="direct", reader=io)
    rows = {row.pv_name: row for row in SnapshotValue.objects.filter(snapshot=snapshot)}
    assert snapshot.disconnected_count == 0 and len(rows) == len(pvs) + len(ca)
    for kind, pv in pvs.items():
        row = rows[pv.setpoint_address]
        assert (row.value_type, row.connected, row.source) == (KINDS[kind], True, "direct"), kind
        if kind == sim_pva.TABLE:
            assert json.loads(row.setpoint_str)["value"]["value"] == original[kind]
        else:
            assert row.setpoint_value == original[kind], kind
    double, enum_pv = pva_server.of_type(sim_pva.DOUBLE), pvs[sim_pva.ENUM]
    # The get's display and choices are kept, with no monitor: units, precision, the label.
    assert (rows[pvs[sim_pva.DOUBLE].setpoint_address].units, rows[pvs[sim_pva.DOUBLE].setpoint_address].precision) == (
        double.units,
        double.precision,
    )
    assert rows[enum_pv.setpoint_address].enum_labels == list(sim_pva.ENUM_CHOICES)
    assert rows[enum_pv.setpoint_address].setpoint_str == sim_pva.ENUM_CHOICES[original[sim_pva.ENUM]]
    assert rows[integer.setpoint].setpoint_value == original_ca[integer.setpoint]

    moved = {kind: changed(kind, value) for kind, value in original.items()}
    serve(pva_server, pvs, moved)
    moved_ca = {
        integer.setpoint: original_ca[integer.setpoint] + 3,
        enum.setpoint: (original_ca[enum.setpoint] + 1) % 2,
    }
    caput_many(moved_ca)
    assert served(pva_server, pvs) == moved

    preview = preview_restore(snapshot, created_by=user, pvs=selection, io=io)
    decided = actions(preview)
    table = pvs[sim_pva.TABLE].setpoint_address
    assert decided.pop(table) == RestoreAction.SKIP_NOT_WRITABLE
    assert set(decided.values()) == {RestoreAction.WRITE}
    assert (preview.write_count, preview.not_writable_count) == (len(WRITABLE) + len(ca), 1)
    assert preview.items.get(pv_name=table).within_tolerance is False  # compared: it differs
    assert "never written" in RestoreAction.SKIP_NOT_WRITABLE.label

    restore = execute_restore(preview, user=user, io=io, verify_timeout=5.0)
    assert restore.status == RestoreStatus.SUCCEEDED, statuses(restore)
    assert set(statuses(restore).values()) == {RestoreItemStatus.VERIFIED}
    assert table not in io.put_addresses and table not in statuses(restore)
    assert not restore.items.exclude(message="").exists()  # every put's completion confirmed
    assert {0, 1} <= set(restore.items.values_list("stage", flat=True))
    now = served(pva_server, pvs)
    assert {kind: now[kind] for kind in WRITABLE} == {kind: original[kind] for kind in WRITABLE}
    assert now[sim_pva.TABLE] == moved[sim_pva.TABLE]  # never written
    assert caget_many(ca) == original_ca
    undo_rows = {row.pv_name: row for row in restore.undo_snapshot.values.all()}
    for kind in WRITABLE:
        assert undo_rows[pvs[kind].setpoint_address].setpoint_value == moved[kind], kind

    undo = undo_restore(restore, user=user, io=io)
    assert set(actions(undo).values()) == {RestoreAction.WRITE}
    undone = execute_restore(undo, user=user, io=io, verify_timeout=5.0)
    assert set(statuses(undone).values()) == {RestoreItemStatus.VERIFIED}
    assert served(pva_server, pvs) == moved
    assert caget_many(ca) == moved_ca
    caput_many(original_ca)


class Answers:
    """A service that reads `alive` addresses as connected with `value`, and passes the rest on:
    the preview of a channel that was up then, executed once it is gone."""

    def __init__(self, service, alive: set, value: float):
        self.service, self.alive, self.value = service, alive, value

    def __getattr__(self, name):
        return getattr(self.service, name)

    def read(self, addresses, timeout=2.0):
        results = self.service.read(addresses, timeout)
        for address in self.alive & set(results):
            results[address].reading = Value(address, "float", self.value, 0, 0, 1.0, 1.0, True)
            results[address].error = None
        return results


def test_a_pva_channel_no_server_answers_reads_and_restores_as_disconnected(pva_server, pvs, pva_channels, user):
    absent = PV.objects.create(setpoint_address="pva://SIM:PVA:ABSENT", abs_tolerance=1e-6)
    double = pvs[sim_pva.DOUBLE]
    selection = PV.objects.filter(pk__in=[absent.pk, double.pk])
    first = served(pva_server, {sim_pva.DOUBLE: double})[sim_pva.DOUBLE]

    snapshot = take_snapshot(title="Absent", created_by=user, pvs=selection, mode="direct", reader=pva_channels)
    row = SnapshotValue.objects.get(snapshot=snapshot, pv=absent)
    assert (row.connected, row.reason) == (False, "disconnected")
    assert actions(preview_restore(snapshot, created_by=user, pvs=selection, io=pva_channels)) == {
        absent.setpoint_address: RestoreAction.SKIP_NO_SAVED_VALUE,
        double.setpoint_address: RestoreAction.SKIP_UNCHANGED,
    }

    # Saved while it answered, gone when restored: the preview saw it, the restore finds it disconnected.
    snapshot = take_snapshot(
        title="Up then",
        created_by=user,
        pvs=selection,
        mode="direct",
        reader=Answers(pva_channels, {absent.setpoint_address}, 5.0),
    )
    serve(pva_server, {sim_pva.DOUBLE: double}, {sim_pva.DOUBLE: first + 1.0})
    now = preview_restore(snapshot, created_by=user, pvs=selection, io=pva_channels)
    assert actions(now)[absent.setpoint_address] == RestoreAction.SKIP_DISCONNECTED
    preview = preview_restore(
        snapshot, created_by=user, pvs=selection, io=Answers(pva_channels, {absent.setpoint_address}, 4.0)
    )
    assert set(actions(preview).values()) == {RestoreAction.WRITE}
    restore = execute_restore(preview, user=user, io=pva_channels, connect_timeout=1.0)
    assert statuses(restore) == {
        absent.setpoint_address: RestoreItemStatus.DISCONNECTED,
        double.setpoint_address: RestoreItemStatus.VERIFIED,
    }
    assert restore.items.get(pv=absent).message.startswith("Not connected within 1 s")
    assert served(pva_server, {sim_pva.DOUBLE: double})[sim_pva.DOUBLE] == first


class CrashAfter:
    """A service whose put sends the first `count` requests, then dies as a killed worker would."""

    def __init__(self, service, count: int):
        self.service, self.count = service, count

    def __getattr__(self, name):
        return getattr(self.service, name)

    def put(self, requests, timeout=5.0, max_outstanding=2000):
        self.service.put(list(requests)[: self.count], timeout, max_outstanding)
        raise CrashingPut


def test_a_pva_restore_that_died_mid_stage_resumes_without_writing_twice(pva_server, pvs, pva_channels, user):
    writable = {kind: pvs[kind] for kind in WRITABLE}
    selection = PV.objects.filter(pk__in=[pv.pk for pv in writable.values()])
    original = served(pva_server, writable)
    snapshot = take_snapshot(title="Before", created_by=user, pvs=selection, mode="direct", reader=pva_channels)
    moved = {kind: changed(kind, value) for kind, value in original.items()}
    serve(pva_server, writable, moved)
    preview = preview_restore(snapshot, created_by=user, pvs=selection, io=pva_channels)
    assert preview.write_count == len(writable)

    with pytest.raises(CrashingPut):
        execute_restore(preview, user=user, io=CrashAfter(pva_channels, 3))
    restore = preview.restore
    restore.refresh_from_db()
    assert restore.writing_stage == 0 and not restore.is_finished
    now = served(pva_server, writable)
    assert sum(now[kind] == original[kind] for kind in writable) == 3  # three puts went out

    spy = Spy(pva_channels)
    resumed = execute_restore(preview, user=user, io=spy)  # the redelivered job
    assert (resumed.pk, resumed.runs, resumed.status) == (restore.pk, 2, RestoreStatus.SUCCEEDED)
    assert set(statuses(resumed).values()) == {RestoreItemStatus.VERIFIED}
    assert resumed.items.filter(message__startswith="Found applied").count() == 3
    assert len(spy.put_addresses) == len(writable) - 3  # the applied ones are not written again
    assert served(pva_server, writable) == original


def job_result(api, response) -> int:
    assert response.status_code in (201, 202), response.content
    job = wait_for_job(api, response.json()["id"])
    assert job["status"] == "succeeded", job["error"]
    return job["result_id"]


@pytest.mark.worker
def test_a_worker_saves_restores_and_undoes_pva_pvs_through_the_api(
    pva_server, pvs, redis_db, client, admin_user, tmp_path, monkeypatch
):
    for name, value in pva_server.conf.items():  # the worker's pvAccess client finds the server
        monkeypatch.setenv(name, value)
    worker = Worker(tmp_path / "worker.log")
    try:
        client.force_login(admin_user)
        selection = {"device": "PVA-TEST"}
        original = served(pva_server, pvs)
        snapshot_id = job_result(
            client,
            client.post(
                "/api/v1/snapshots/",
                {"title": "pvAccess", "mode": "direct", "selection": selection},
                content_type="application/json",
            ),
        )
        assert SnapshotValue.objects.filter(snapshot_id=snapshot_id, connected=True).count() == len(pvs)
        moved = {kind: changed(kind, value) for kind, value in original.items()}
        serve(pva_server, pvs, moved)

        preview_id = job_result(
            client,
            client.post(
                "/api/v1/restore-previews/",
                {"snapshot": snapshot_id, "selection": selection},
                content_type="application/json",
            ),
        )
        preview = client.get(f"/api/v1/restore-previews/{preview_id}/").json()
        assert (preview["write_count"], preview["not_writable_count"]) == (len(WRITABLE), 1)
        restore_id = job_result(
            client, client.post(f"/api/v1/restore-previews/{preview_id}/execute/", content_type="application/json")
        )
        restored = Restore.objects.get(pk=restore_id)
        assert restored.status == RestoreStatus.SUCCEEDED, statuses(restored)
        now = served(pva_server, pvs)
        assert {kind: now[kind] for kind in WRITABLE} == {kind: original[kind] for kind in WRITABLE}

        undo_id = job_result(
            client, client.post(f"/api/v1/restores/{restore_id}/undo/", content_type="application/json")
        )
        job_result(client, client.post(f"/api/v1/restore-previews/{undo_id}/execute/", content_type="application/json"))
        assert served(pva_server, pvs) == moved
    finally:
        worker.stop()
