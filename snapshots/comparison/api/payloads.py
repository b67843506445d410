"""The compare API's rows as plain dicts (JSON-safe: NaN and infinities spelled out).

Plain dicts, not DRF serializers: a page of a thousand rows through serializers would cost more
than the comparison itself. snapshots.comparison.api.serializers describes the same shapes for
the schema, and the contract test (squirrel_site/tests/test_openapi_contract.py) checks that the
two agree.
"""

from snapshots.comparison.nway import NWayRow
from snapshots.comparison.rows import ComparisonRow, Shown
from squirrel_site.epics_values import to_json


def side_json(s: Shown | None) -> dict | None:
    """A side for the API (JSON-safe), with its readback (null when the PV has none)."""
    if s is None:
        return None
    return {
        "kind": s.kind,
        "value": to_json(s.value),
        "display": s.display,
        "label": s.label,
        "connected": s.connected,
        "severity": s.severity,
        "status": s.status,
        "units": s.units,
        "precision": s.precision,
        "reason": s.reason,
        "timestamp": s.timestamp,
        **({"address": s.address} if s.address else {}),
        "readback": side_json(s.readback),
    }


def comparison_json(row: ComparisonRow) -> dict:
    """A row for the API (JSON-safe: NaN and infinities spelled out)."""
    side = side_json
    return {
        "pv": row.pv_id,
        "pv_name": row.name,
        "device": row.device,
        "status": row.status,
        "kind": row.kind,
        "a": side(row.a),
        "b": side(row.b),
        "delta": to_json(row.delta),
        "differences": row.differences,
        "abs_tolerance": row.abs_tolerance,
        "rel_tolerance": row.rel_tolerance,
        "severity": row.severity,
    }


def nway_json(row: NWayRow) -> dict:
    """An N-way row: A's side, and each column's status, side and delta against A."""
    return {
        "pv": row.pv_id,
        "pv_name": row.name,
        "device": row.device,
        "abs_tolerance": row.abs_tolerance,
        "rel_tolerance": row.rel_tolerance,
        "reference": side_json(row.reference),
        "columns": [
            {
                "status": cell.status,
                "value": side_json(cell.b),
                "delta": to_json(cell.delta),
                "delta_display": cell.delta_display,
                "differences": cell.differences,
            }
            for cell in row.cells
        ],
    }
