"""Export of a snapshot to JSON or CSV, lossless: snapshots/capture/importers.py reads both back.

Both formats carry the same fields per value (:data:`FIELDS`, docs/snapshots.md). Floats are
written with repr() (the shortest text that parses back to the same double); NaN and the
infinities, which strict JSON lacks, are spelled "NaN", "Infinity" and "-Infinity".
JSON holds one value record per line after a header with the snapshot's own fields. In CSV the
value cells (setpoint, readback, their enum labels and the enum label list) hold JSON, so that
arrays fit in one cell and an empty string stays distinct from no value (an empty cell).
"""

import json

from snapshots.capture.models import Snapshot, SnapshotValue
from squirrel_site import epics_values, safe_csv
from squirrel_site.epics_values import to_json

FORMAT = "squirrel-snapshot"
VERSION = 1
FIELDS = (
    "pv_name",
    "readback_name",
    "value_type",
    "setpoint",
    "setpoint_label",
    "status",
    "severity",
    "timestamp",
    "readback",
    "readback_label",
    "readback_status",
    "readback_severity",
    "readback_timestamp",
    "units",
    "precision",
    "enum_labels",
    "source",
    "age",
    "connected",
    "reason",
)
# CSV cells holding JSON (empty: null).
JSON_CELLS = frozenset({"setpoint", "setpoint_label", "readback", "readback_label", "enum_labels"})
_STORED = (
    "pv_name",
    "readback_name",
    "value_type",
    "setpoint_num",
    "setpoint_str",
    "setpoint_array",
    "status",
    "severity",
    "timestamp",
    "readback_num",
    "readback_str",
    "readback_array",
    "readback_status",
    "readback_severity",
    "readback_timestamp",
    "units",
    "precision",
    "enum_labels",
    "source",
    "age",
    "connected",
    "reason",
)
_CHUNK = 2000


def value_records(snapshot: Snapshot):
    """Each value of `snapshot` as a dict of FIELDS (JSON-ready except for non-finite floats)."""
    stored = SnapshotValue.objects.filter(snapshot=snapshot).order_by("pv_name").only(*_STORED)
    for value in stored.iterator(chunk_size=_CHUNK):
        enum = epics_values.is_labelled(value.value_type)
        yield {
            "pv_name": value.pv_name,
            "readback_name": value.readback_name,
            "value_type": value.value_type,
            "setpoint": value.setpoint_value,
            "setpoint_label": value.setpoint_str if enum else None,
            "status": value.status,
            "severity": value.severity,
            "timestamp": _iso(value.timestamp),
            "readback": value.readback_value,
            "readback_label": value.readback_str if enum else None,
            "readback_status": value.readback_status,
            "readback_severity": value.readback_severity,
            "readback_timestamp": _iso(value.readback_timestamp),
            "units": value.units,
            "precision": value.precision,
            "enum_labels": value.enum_labels,
            "source": value.source,
            "age": value.age,
            "connected": value.connected,
            "reason": value.reason,
        }


def export_snapshot_json(snapshot: Snapshot, stream) -> None:
    """Write `snapshot` as JSON to a text stream: its fields, then one value record per line."""
    header = {
        "format": FORMAT,
        "version": VERSION,
        "title": snapshot.title,
        "comment": snapshot.comment,
        "created_by": snapshot.created_by.get_username(),
        "created_at": _iso(snapshot.created_at),
        "mode": snapshot.mode,
        "origin": snapshot.origin,
        "tags": sorted(tag.name for tag in snapshot.tags.all()),
        "pv_count": snapshot.pv_count,
        "disconnected_count": snapshot.disconnected_count,
    }
    stream.write(json.dumps(header, ensure_ascii=False)[:-1] + ', "values": [')
    separator = "\n"
    for record in value_records(snapshot):
        stream.write(separator)
        stream.write(json.dumps(_safe(record), ensure_ascii=False, allow_nan=False))
        separator = ",\n"
    stream.write("\n]}\n")


def export_snapshot_csv(snapshot: Snapshot, stream) -> None:
    """Write `snapshot`'s values as CSV to a text stream (open it with newline="")."""
    writer = safe_csv.writer(stream, lineterminator="\n")
    writer.writerow(FIELDS)
    for record in value_records(snapshot):
        writer.writerow([_cell(name, record[name]) for name in FIELDS])


def _safe(record: dict) -> dict:
    record["setpoint"] = to_json(record["setpoint"])
    record["readback"] = to_json(record["readback"])
    record["age"] = to_json(record["age"])
    return record


def _cell(name: str, value) -> str:
    if value is None:
        return ""
    if name in JSON_CELLS:
        return json.dumps(to_json(value), ensure_ascii=False, allow_nan=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _iso(moment) -> str | None:
    return moment.isoformat() if moment is not None else None
