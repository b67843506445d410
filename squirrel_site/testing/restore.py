"""Shared by the restore tests: an in-memory EpicsService, its fixtures, and small builders."""

import time
from collections import Counter
from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from pvs import epics_io
from pvs.models import PV
from snapshots.models import (
    RestorePreview,
    Snapshot,
    SnapshotMode,
    SnapshotValue,
    ValueType,
)
from squirrel_site.epics_values import Value


class CrashingPut(Exception):
    """The fake IOC's way of killing the worker in the middle of a put."""


class FakeIOC:
    """An in-memory EpicsService: setpoints, read-backs that follow them, dead and denied PVs.

    `puts` counts puts per address; `put_log` keeps their order. A read-back follows its setpoint
    plus `offsets[setpoint]`, unless frozen in `frozen_readbacks` (never settles).
    """

    def __init__(self):
        self.values: dict[str, object] = {}
        self.kinds: dict[str, str] = {}
        self.readbacks: dict[str, str] = {}
        self.offsets: dict[str, float] = {}
        self.frozen_readbacks: dict[str, object] = {}
        self.dead: set[str] = set()
        self.denied: set[str] = set()
        self.silent_readbacks: set[str] = set()
        self.puts: Counter = Counter()
        self.put_log: list[tuple[str, object, bool]] = []
        self.reads: list[list[str]] = []
        self.crash_after: int | None = None
        self.connect_calls = 0

    def add(self, address, value, kind="float", readback=None):
        self.values[address], self.kinds[address] = value, kind
        if readback:
            self.readbacks[readback] = address

    def value_of(self, address):
        if address in self.frozen_readbacks:
            return self.frozen_readbacks[address]
        if address in self.readbacks:
            setpoint = self.readbacks[address]
            return self.values[setpoint] + self.offsets.get(setpoint, 0.0)
        return self.values[address]

    def connect(self, addresses, timeout):
        self.connect_calls += 1
        return {a for a in addresses if a not in self.dead and (a in self.values or a in self.readbacks)}

    def read(self, addresses, timeout=2.0):
        addresses = list(addresses)
        self.reads.append(addresses)
        results = {}
        for a in addresses:
            if a in self.dead:
                results[a] = epics_io.ReadResult(a, None, epics_io.DISCONNECTED)
            elif a in self.silent_readbacks:
                results[a] = epics_io.ReadResult(a, None, epics_io.TIMEOUT)
            else:
                kind = self.kinds.get(self.readbacks.get(a, a), "float")
                reading = Value(a, kind, self.value_of(a), 0, 0, time.time(), time.time())
                results[a] = epics_io.ReadResult(a, reading, None)
        return results

    def put(self, requests, timeout=5.0, max_outstanding=2000):
        results = {}
        for request in requests:
            if self.crash_after is not None and len(self.put_log) >= self.crash_after:
                raise CrashingPut("worker killed mid-stage")
            a = request.address
            if a in self.dead:
                results[a] = epics_io.PutResult(a, False, epics_io.DISCONNECTED, False)
                continue
            if a in self.denied:
                results[a] = epics_io.PutResult(a, False, epics_io.NO_WRITE_ACCESS, False)
                continue
            self.puts[a] += 1
            self.put_log.append((a, request.value, request.wait))
            self.values[a] = request.value
            results[a] = epics_io.PutResult(a, True, None, request.wait)
        return results

    def metadata(self, addresses):
        return {
            a: None
            if a in self.dead
            else epics_io.Metadata(a, self.kinds.get(a, "float"), 1, write_access=a not in self.denied)
            for a in addresses
        }


def make_pv(address, *, readback="", stage=0, read_only=False, wait=False, abs_tolerance=0.0, rel_tolerance=0.0):
    return PV.objects.create(
        setpoint_address=address,
        readback_address=readback,
        restore_stage=stage,
        read_only=read_only,
        wait_for_completion=wait,
        abs_tolerance=abs_tolerance,
        rel_tolerance=rel_tolerance,
    )


def make_snapshot(user, saved: dict) -> Snapshot:
    """A snapshot holding `saved`: {PV or address: value} (None = disconnected when saved)."""
    snapshot = Snapshot.objects.create(title="Saved", created_by=user, mode=SnapshotMode.DIRECT)
    for key, value in saved.items():
        pv = key if isinstance(key, PV) else None
        name = pv.setpoint_address if pv else key
        if value is None:
            fields = {"value_type": ValueType.NONE, "connected": False, "reason": "disconnected"}
        elif isinstance(value, str):
            fields = {"value_type": ValueType.STRING, "setpoint_str": value}
        elif isinstance(value, list):
            fields = {"value_type": ValueType.FLOAT_ARRAY, "setpoint_array": value}
        else:
            fields = {"value_type": ValueType.FLOAT, "setpoint_num": value}
        SnapshotValue.objects.create(snapshot=snapshot, pv=pv, pv_name=name, source="direct", **fields)
    return snapshot


def actions(preview) -> dict[str, str]:
    return dict(preview.items.values_list("pv_name", "action"))


def statuses(restore) -> dict[str, str]:
    return dict(restore.items.values_list("pv_name", "status"))


def simple_setup(ioc, user, count=3, **pv_options):
    """`count` PVs with read-backs, live at 0.0, saved at 1.0, 2.0, ..."""
    saved = {}
    for i in range(count):
        pv = make_pv(f"T:SP{i}", readback=f"T:RB{i}", **pv_options)
        ioc.add(pv.setpoint_address, 0.0, readback=pv.readback_address)
        saved[pv] = float(i + 1)
    return make_snapshot(user, saved)


def make_preview(client, snapshot) -> RestorePreview:
    preview_of(client, snapshot, scope="all")
    return RestorePreview.objects.get()


def preview_record(snapshot, user, **changes):
    from snapshots.restore.preview import registry_fingerprint

    fields = {
        "expires_at": timezone.now() + timedelta(minutes=5),
        "live_source": "cache",
        "registry_fingerprint": registry_fingerprint([]),
        **changes,
    }
    return RestorePreview.objects.create(snapshot=snapshot, created_by=user, **fields)


def preview_of(client, snapshot, **post):
    return client.post(reverse("snapshots:restore_preview_create", args=[snapshot.pk]), post)
