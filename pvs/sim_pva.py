"""The simulated pvAccess PVs served by `run_sim_pva`: names, normative types and first values.

Pure and deterministic, like :mod:`pvs.sim`: the same (count, prefix, seed) always gives the same
PVs. Nothing here imports p4p; the command builds the server from these descriptions.

Every normative type the pvAccess client (:mod:`pvs.pva_bulk`) converts is here at least once:

- NTScalar double (with display: units, precision, limits), integer, boolean and string;
- NTScalarArray of doubles and of strings;
- NTEnum (index and choices);
- NTTable (a structure no value kind holds: kept as typed JSON).

Every PV is writable; a put is applied and completes at once (no readback delay: the pvAccess
set has no setpoint/readback pairs yet).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

DOUBLE, INT, BOOL, STRING = "double", "int", "bool", "string"
DOUBLE_ARRAY, STRING_ARRAY, ENUM, TABLE = "double_array", "string_array", "enum", "table"
TYPES = (DOUBLE, INT, BOOL, STRING, DOUBLE_ARRAY, STRING_ARRAY, ENUM, TABLE)

# Share of the PVs per type; doubles take whatever is left. Every type gets at least one PV.
TYPE_SHARES = {
    INT: 0.10,
    BOOL: 0.05,
    STRING: 0.05,
    ENUM: 0.08,
    DOUBLE_ARRAY: 0.005,
    STRING_ARRAY: 0.001,
    TABLE: 0.0001,
}
MIN_PVS = len(TYPES)
# What each type reads as through pvs.pva_bulk (squirrel_site.epics_values kinds).
KINDS = {
    DOUBLE: "float",
    INT: "int",
    BOOL: "int",
    STRING: "string",
    DOUBLE_ARRAY: "float_array",
    STRING_ARRAY: "string_array",
    ENUM: "enum",
    TABLE: "structure",
}
CODE = {DOUBLE: "D", INT: "I", BOOL: "B", STRING: "S", DOUBLE_ARRAY: "DA", STRING_ARRAY: "SA", ENUM: "E", TABLE: "T"}
ENUM_CHOICES = ("Off", "On", "Standby", "Fault")
ARRAY_LENGTH = 16
UNITS = ("A", "mA", "V", "kV", "mm", "mrad", "T", "GeV")
# The table's columns: name and p4p type code (the NTTable's value fields, in order).
TABLE_COLUMNS = (("device", "s"), ("setpoint", "d"), ("enabled", "?"), ("count", "i"))
TABLE_ROWS = 4


@dataclass(frozen=True)
class SimPV:
    """One simulated pvAccess PV: what type it is and what it holds first."""

    name: str
    type: str  # one of TYPES
    value: object  # float, int, bool, str, list, the enum's index, or the table's {column: list}
    units: str = ""
    precision: int = 0
    low: float = 0.0
    high: float = 0.0


def counts(total: int) -> dict[str, int]:
    """How many PVs of each type `total` PVs hold (each type at least one)."""
    if total < MIN_PVS:
        raise ValueError(f"the pvAccess set needs at least {MIN_PVS} PVs (one of each type), not {total}")
    result = {kind: max(1, int(total * share)) for kind, share in TYPE_SHARES.items()}
    result[DOUBLE] = total - sum(result.values())
    return {kind: result[kind] for kind in TYPES}


def generate(total: int, prefix: str = "SIM:", seed: int = 0) -> list[SimPV]:
    """`total` PVs named ``{prefix}PVA:{code}:{number}`` (e.g. ``SIM:PVA:D:00001``)."""
    rng = random.Random(seed)
    pvs = []
    for kind, count in counts(total).items():
        for number in range(1, count + 1):
            name = f"{prefix}PVA:{CODE[kind]}:{number:05d}"
            pvs.append(_pv(kind, name, number, rng))
    return pvs


def _pv(kind: str, name: str, number: int, rng: random.Random) -> SimPV:
    if kind == DOUBLE:
        high = float(rng.choice((10, 100, 1000)))
        return SimPV(
            name,
            kind,
            round(rng.uniform(0, high), 3),
            units=rng.choice(UNITS),
            precision=rng.choice((1, 2, 3)),
            low=-high,
            high=high,
        )
    if kind == INT:
        return SimPV(name, kind, rng.randrange(-1000, 1000), low=-1000, high=1000)
    if kind == BOOL:
        return SimPV(name, kind, bool(number % 2))
    if kind == STRING:
        return SimPV(name, kind, f"mode {rng.randrange(100)}")
    if kind == DOUBLE_ARRAY:
        return SimPV(name, kind, [round(rng.uniform(-1, 1), 4) for _ in range(ARRAY_LENGTH)], units="mm", precision=4)
    if kind == STRING_ARRAY:
        return SimPV(name, kind, [f"step {i}" for i in range(rng.randrange(2, 6))])
    if kind == ENUM:
        return SimPV(name, kind, number % len(ENUM_CHOICES))
    return SimPV(
        name,
        kind,
        {
            "device": [f"MAG{number:02d}{row}" for row in range(TABLE_ROWS)],
            "setpoint": [round(rng.uniform(0, 10), 2) for _ in range(TABLE_ROWS)],
            "enabled": [row % 2 == 0 for row in range(TABLE_ROWS)],
            "count": [rng.randrange(100) for _ in range(TABLE_ROWS)],
        },
    )


def shard(pvs: list[SimPV], index: int, shards: int) -> list[SimPV]:
    """The PVs server `index` of `shards` serves (every `shards`-th, so each holds every type
    once there are enough)."""
    if not 0 <= index < shards:
        raise ValueError(f"shard {index} of {shards}")
    return pvs[index::shards]
