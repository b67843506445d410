"""Snapshots written straight from Python values, PVs in the registry, live values in Redis, and a
direct reader answering from a dict: the fixtures and helpers of the snapshot, comparison and API tests."""

import time
from dataclasses import dataclass

import pytest

from monitor import live
from monitor.live import FencedWriter, Lease, LiveMeta, Shard
from pvs.models import PV
from snapshots.models import Snapshot, SnapshotValue, ValueSource, ValueType
from squirrel_site.epics_values import NT_TABLE, Value, structure_text


@pytest.fixture
def operator(make_user):
    """A user of the operator role (user name "operator"): may take snapshots and restore."""
    return make_user("operator", "operator")


@pytest.fixture
def user(make_user):
    """The operator of the snapshot and restore services' tests (user name "operator")."""
    return make_user("operator", "operator")


@dataclass
class Enum:
    """An enum value for make_snapshot / set_live: its index and the record's labels."""

    index: int
    labels: tuple[str, ...] = ("Off", "On", "Fault")


@dataclass(frozen=True)
class Structure:
    """A pvAccess structure for make_snapshot / live_values: its typed JSON text."""

    text: str


def nt_table(columns: dict[str, tuple[str, list]], descriptor: str = "") -> Structure:
    """An NTTable as pvs.pva_bulk reads one: `columns` is {name: (p4p type code, elements)}, e.g.
    {"device": ("as", ["Q1", "Q2"]), "setpoint": ("ad", [1.5, 2.0])}."""
    spec = [["labels", "as"], ["value", ["S", "structure", [[name, code] for name, (code, _) in columns.items()]]]]
    fields = {
        "labels": list(columns),
        "value": {name: list(items) for name, (_, items) in columns.items()},
        "descriptor": descriptor,
    }
    return Structure(structure_text(f"{NT_TABLE}1.0", spec + [["descriptor", "s"]], fields))


def structure(type_id: str, fields: dict) -> Structure:
    """Any other structure (not a table): `fields` typed by their JSON only."""
    return Structure(structure_text(type_id, [[name, "any"] for name in fields], fields))


def kind_of(value) -> str:
    if isinstance(value, Enum):
        return ValueType.ENUM
    if isinstance(value, Structure):
        return ValueType.STRUCTURE
    if isinstance(value, bool) or value is None:
        raise TypeError(value)
    if isinstance(value, int):
        return ValueType.INT
    if isinstance(value, float):
        return ValueType.FLOAT
    if isinstance(value, str):
        return ValueType.STRING
    if isinstance(value, list):
        return ValueType.INT_ARRAY if all(isinstance(x, int) for x in value) and value else ValueType.FLOAT_ARRAY
    raise TypeError(value)


def saved_value(snapshot, name: str, value, *, severity: int = 0, precision=None, units: str = "") -> SnapshotValue:
    """A SnapshotValue of `value` (None: disconnected) for the registry PV `name` (if any)."""
    pv = PV.objects.filter(setpoint_address=name).first()
    row = SnapshotValue(
        snapshot=snapshot, pv=pv, pv_name=name, source=ValueSource.CACHE, units=units, precision=precision
    )
    if value is None:
        row.value_type, row.connected, row.reason = ValueType.NONE, False, "disconnected"
        return row
    row.value_type, row.severity, row.status = kind_of(value), severity, 0
    if isinstance(value, Enum):
        row.setpoint_num, row.setpoint_str, row.enum_labels = value.index, value.labels[value.index], list(value.labels)
    elif isinstance(value, str):
        row.setpoint_str = value
    elif isinstance(value, Structure):
        row.setpoint_str = value.text
    elif isinstance(value, list):
        row.setpoint_array = [float(x) for x in value]
    else:
        row.setpoint_num = float(value)
    return row


@pytest.fixture
def make_snapshot(admin_user):
    """make_snapshot(title, {name: value}, severities={name: n}): a snapshot holding those values.

    Values: float, int, str, list (array), Enum, Structure (nt_table, structure), None
    (disconnected). Names that are registry
    PVs are linked to them.
    """

    def make(title: str, values: dict, severities: dict | None = None, precision=None) -> Snapshot:
        snapshot = Snapshot.objects.create(title=title, created_by=admin_user, mode="cache", pv_count=len(values))
        SnapshotValue.objects.bulk_create(
            saved_value(snapshot, name, value, severity=(severities or {}).get(name, 0), precision=precision)
            for name, value in values.items()
        )
        return snapshot

    return make


@pytest.fixture
def make_pvs():
    """make_pvs("A", "B", abs_tolerance=0.1) creates (or updates) registry PVs."""

    def create(*names: str, **fields) -> list[PV]:
        pvs = []
        for name in names:
            pv, _ = PV.objects.update_or_create(setpoint_address=name, defaults=fields)
            pvs.append(pv)
        return pvs

    return create


@pytest.fixture
def live_values(redis_db):
    """Write live values as the monitor's leader would, with a fresh heartbeat.

    Call with {address: value}: a float, int, str, list, Enum (its labels go in the metadata), Structure,
    (kind, value), or None for a disconnected channel; `severities` {address: severity}.
    """
    lease = Lease(redis_db, Shard(0, 1), "test", ttl=60.0)
    assert lease.acquire()
    writer = FencedWriter(redis_db, lease)

    def write(entries: dict, severities: dict | None = None):
        now = time.time()
        values, metas = {}, {}
        for address, entry in entries.items():
            if isinstance(entry, tuple):
                kind, value = entry
            elif entry is None:
                kind, value = "float", None
            else:
                kind, value = kind_of(entry), entry.index if isinstance(entry, Enum) else entry
                value = value.text if isinstance(value, Structure) else value
            severity = (severities or {}).get(address, 0)
            values[address] = Value(address, kind, value, 0, severity, now, now, value is not None)
            if isinstance(entry, Enum):
                metas[address] = LiveMeta("", None, list(entry.labels), None, None, "", kind, 1, True, True)
        assert writer.write(values, metas)
        live.write_heartbeat(redis_db, Shard(0, 1), {"synced": True})

    return write


@dataclass
class FakeResult:
    """Shaped like pvs.epics_io.ReadResult."""

    address: str
    reading: Value | None
    error: str | None


class FakeReader:
    """Answers direct reads from a dict of address -> value (or an error text); records calls."""

    def __init__(self, answers: dict):
        self.answers = answers
        self.calls: list[list[str]] = []

    def read(self, addresses, timeout):
        self.calls.append(list(addresses))
        results = {}
        for address in addresses:
            answer = self.answers.get(address, "timeout")
            if isinstance(answer, str):
                results[address] = FakeResult(address, None, answer)
            else:
                kind = "int" if isinstance(answer, int) else "float"
                reading = Value(address, kind, answer, 0, 0, time.time() - 10, time.time())
                results[address] = FakeResult(address, reading, None)
        return results

    @property
    def read_addresses(self) -> set[str]:
        return {address for call in self.calls for address in call}


ALL_CACHED = {"T:A_SP": 1.0, "T:A_RB": 1.1, "T:B_SP": 2.0, "T:B_RB": 2.1, "T:C": 3.0}
