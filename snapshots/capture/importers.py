"""Import of a snapshot file: Squirrel's own export (snapshots/capture/exporters.py, JSON or CSV)
and the save files other tools write (snapshots/capture/save_files.py: autosave .sav, PSI snapshot
and BURT .snap), all through :func:`import_snapshot`.

All or nothing: every record is checked first and every problem is reported (with its line, or
its JSON record number); only a clean file is written, in one transaction with COPY. Values are
matched to registry PVs by setpoint address; unknown addresses are kept with no PV and listed on
the snapshot returned (``unknown_pvs``).
"""

import codecs
import io
import math
import os
from datetime import datetime

import redis
from django.db import DataError, IntegrityError

from monitor import live
from pvs.importers import ImportProblem
from pvs.models import PV
from pvs.protocols import normalized
from pvs.validators import address_error
from snapshots.capture import save_files, values
from snapshots.capture.exporters import FIELDS, FORMAT, JSON_CELLS
from snapshots.capture.models import (
    Severity,
    Snapshot,
    SnapshotMode,
    SnapshotOrigin,
    SnapshotValue,
    ValueSource,
    ValueType,
)
from snapshots.capture.services import TITLE_MAX_LENGTH, save_snapshot
from squirrel_site import epics_values as ev
from squirrel_site import safe_csv
from squirrel_site.bulk_sql import in_array
from squirrel_site.untrusted import NUL, NUL_MESSAGE, TextError, decode_text, parse_json

EXTENSIONS = (".json", ".csv", ".sav", ".snap")
# Kinds of the registry's PVs come from their newest snapshots (not imported ones): this many.
KNOWN_KIND_SNAPSHOTS = 3

_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_SMALLINT = range(-32768, 32768)
_SEVERITIES = set(Severity.values)
# Django rebuilds `.values` at each access (a list comprehension over the members): 1.8 s of a
# 50,000-value import when read per record.
_VALUE_TYPES = tuple(ValueType.values)
_SOURCES = tuple(ValueSource.values)
_NAME_MAX = SnapshotValue._meta.get_field("pv_name").max_length
_UNITS_MAX = SnapshotValue._meta.get_field("units").max_length
_REASON_MAX = SnapshotValue._meta.get_field("reason").max_length
_LABEL_MAX = SnapshotValue._meta.get_field("enum_labels").base_field.max_length


class SnapshotImportError(Exception):
    """A snapshot file that cannot be imported; `problems` lists every reason with its place."""

    def __init__(self, problems: list[ImportProblem]):
        self.problems = problems
        shown = "; ".join(str(problem) for problem in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(f"{shown}{more}")


def import_snapshot(filename: str, content: bytes | str, *, created_by, title: str | None = None) -> Snapshot:
    """Create a snapshot (origin imported) from an exported .json or .csv file, an autosave .sav
    file, or a PSI snapshot or BURT .snap file (told apart by their content).

    The title is `title`, else the file's (JSON), else the file name without extension. The
    snapshot returned carries ``unknown_pvs``: the names no registry PV has (kept without a PV).
    Raises SnapshotImportError listing every problem; nothing is written then.
    """
    problems: list[ImportProblem] = []
    extension = os.path.splitext(filename)[1].lower()
    if extension not in EXTENSIONS:
        raise SnapshotImportError(
            [
                ImportProblem(
                    filename, None, f"Unknown file type {extension or '(none)'!r}: use {', '.join(EXTENSIONS)}."
                )
            ]
        )
    try:
        text = decode_text(content) if extension in (".json", ".csv") else _save_file_text(content)
    except TextError as error:
        raise SnapshotImportError([ImportProblem(filename, error.line, error.message)]) from None
    fmt = save_files.sniff(filename, text) if extension in (".sav", ".snap") else None  # else an export
    if fmt is not None:
        header, records = _parse_save_file(fmt, filename, text, problems)
    else:
        parse = _parse_json if extension == ".json" else _parse_csv
        header, records = parse(filename, text, problems)
    rows = _rows(filename, records, problems)
    title = (title or header.get("title") or os.path.splitext(os.path.basename(filename))[0]).strip()
    if not title or len(title) > TITLE_MAX_LENGTH:
        problems.append(ImportProblem(filename, None, f"The title must have 1 to {TITLE_MAX_LENGTH} characters."))
    elif NUL in title:
        problems.append(ImportProblem(filename, None, f"The title {NUL_MESSAGE}."))
    if not rows and not problems:
        problems.append(ImportProblem(filename, None, "The file holds no values."))
    if problems:
        raise SnapshotImportError(problems)
    _link_pvs(rows)
    try:
        snapshot = save_snapshot(
            title=title,
            comment=header.get("comment") or "",
            created_by=created_by,
            mode=_mode(header.get("mode"), rows),
            origin=SnapshotOrigin.IMPORTED,
            tags=[],
            rows=rows,
        )
    except (DataError, IntegrityError) as error:
        reason = str(error).splitlines()[0]
        raise SnapshotImportError(
            [ImportProblem(filename, None, f"The database refused the values: {reason}")]
        ) from None
    snapshot.unknown_pvs = [row[1] for row in rows if row[0] is None]
    return snapshot


def _save_file_text(content: bytes | str) -> str:
    """A save file's text: UTF-8, else Latin-1 (the C tools write bytes, often Latin-1), no NUL."""
    if isinstance(content, bytes):
        try:
            return decode_text(content)
        except TextError as error:
            if not error.message.startswith("Not UTF-8"):
                raise
            return decode_text(content.removeprefix(codecs.BOM_UTF8).decode("latin-1"))
    return decode_text(content)


def _parse_save_file(fmt: str, filename: str, text: str, problems: list) -> tuple[dict, list]:
    """(header, records) of an autosave, PSI snapshot or BURT file: records as _rows reads them,
    each value of the kind save_files.typed_value decides."""
    saved = save_files.parse(fmt, filename, text, problems)
    known = _known_kinds([entry.name for entry in saved.entries])
    stamp = saved.saved_at.isoformat() if saved.saved_at else None
    records = []
    for entry in saved.entries:
        record = {"pv_name": entry.name, "units": entry.units, "precision": entry.precision, "timestamp": stamp}
        if entry.value is None:
            record |= {"value_type": ev.NO_VALUE, "connected": False, "reason": entry.reason[:_REASON_MAX]}
        else:
            kind_labels = known.get(normalized(entry.name)) if address_error(entry.name) is None else None
            kind, labels = kind_labels or (None, None)
            try:
                value_type, value = save_files.typed_value(entry, kind)
            except save_files.KindError as error:
                problems.append(ImportProblem(filename, entry.line, f"{entry.name!r}: {error}."))
                continue
            record |= {"value_type": value_type, "setpoint": value}
            if ev.is_labelled(value_type) and labels:
                record["enum_labels"] = labels
                record["setpoint_label"] = labels[value] if 0 <= value < len(labels) else None
        records.append((entry.line, f"line {entry.line}", record))
    comment = f"Imported from the {save_files.FORMAT_LABELS[fmt]} file {os.path.basename(filename)}"
    if saved.saved_at:
        comment += f", saved {saved.saved_at.isoformat(sep=' ', timespec='seconds')}"
    comment += "." + (f"\n{saved.comment}" if saved.comment else "")
    return {"comment": comment}, records


def _known_kinds(names: list[str]) -> dict[str, tuple[str, list | None]]:
    """{setpoint address: (kind, enum labels)} of the named registry PVs: as their newest
    snapshots (KNOWN_KIND_SNAPSHOTS, not imported ones) saved them, else as the monitor's cache
    holds them (the channel's metadata, else its value; none when Redis cannot be reached)."""
    addresses = {normalized(name) for name in names if address_error(name) is None}
    registry = PV.objects.filter(setpoint_address__in=in_array(sorted(addresses), "text"))
    ids = dict(registry.values_list("id", "setpoint_address"))
    if not ids:
        return {}
    newest = (
        Snapshot.objects.exclude(origin=SnapshotOrigin.IMPORTED)
        .order_by("-id")
        .values_list("id", flat=True)[:KNOWN_KIND_SNAPSHOTS]
    )
    known: dict[str, tuple[str, list | None]] = {}
    for snapshot_id in newest:
        saved = SnapshotValue.objects.filter(snapshot_id=snapshot_id, pv_id__in=in_array(list(ids), "bigint"))
        for pv_id, kind, labels in saved.exclude(value_type=ev.NO_VALUE).values_list(
            "pv_id", "value_type", "enum_labels"
        ):
            known.setdefault(ids[pv_id], (kind, labels))
        if len(known) == len(ids):
            return known
    unknown = [address for address in ids.values() if address not in known]
    try:
        cached, metadata, _ = live.read_values_and_metadata(unknown)
    except redis.RedisError:
        return known
    for address in unknown:
        meta, value = metadata.get(address), cached.get(address)
        kind = meta.kind if meta is not None else value.kind if value is not None else None
        if ev.spec_of(kind) is not None:
            known[address] = (kind, meta.enum_labels if meta is not None else None)
    return known
    for address, meta in metadata.items():
        if meta is not None and ev.spec_of(meta.kind) is not None:
            known[address] = (meta.kind, meta.enum_labels)
    return known


# ---------------------------------------------------------------------------------------------
# Files to (place, record) pairs; a record maps FIELDS to JSON-like values.


def _parse_json(filename: str, text: str, problems: list) -> tuple[dict, list[tuple[int | None, str, dict]]]:
    try:
        document = parse_json(text)
    except ValueError as error:
        problems.append(ImportProblem(filename, getattr(error, "lineno", None), f"Not valid JSON: {error}"))
        return {}, []
    if not isinstance(document, dict) or not isinstance(document.get("values"), list):
        problems.append(ImportProblem(filename, None, 'Expected an object with a "values" list (a Squirrel export).'))
        return {}, []
    if document.get("format", FORMAT) != FORMAT:
        problems.append(ImportProblem(filename, None, f"Not a {FORMAT} file (format {document.get('format')!r})."))
    header = {key: document.get(key) for key in ("title", "comment", "mode")}
    for key, value in header.items():
        if value is not None and not isinstance(value, str):
            problems.append(ImportProblem(filename, None, f'"{key}" must be text.'))
            header[key] = None
    records = []
    for number, record in enumerate(document["values"], start=1):
        place = f"record {number}"
        if not isinstance(record, dict):
            problems.append(ImportProblem(filename, None, f"{place}: expected an object."))
            continue
        unknown = sorted(set(record) - set(FIELDS))
        if unknown:
            problems.append(ImportProblem(filename, None, f"{place}: unknown fields {', '.join(unknown)}."))
        records.append((None, place, record))
    return header, records


def _parse_csv(filename: str, text: str, problems: list) -> tuple[dict, list[tuple[int | None, str, dict]]]:
    reader = safe_csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        problems.append(ImportProblem(filename, None, "The file is empty."))
        return {}, []
    columns = [name.strip() for name in header]
    unknown = [name for name in columns if name not in FIELDS]
    missing = [name for name in ("pv_name", "value_type") if name not in columns]
    if unknown or missing or len(set(columns)) != len(columns):
        detail = [
            f"unknown columns {', '.join(unknown)}" if unknown else "",
            f"missing columns {', '.join(missing)}" if missing else "",
            "repeated columns" if len(set(columns)) != len(columns) else "",
        ]
        message = f"Header: {'; '.join(d for d in detail if d)} (expected {','.join(FIELDS)})."
        problems.append(ImportProblem(filename, 1, message))
        return {}, []
    records = []
    start = reader.line_num + 1
    for cells in reader:
        line, start = start, reader.line_num + 1
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(columns):
            problems.append(ImportProblem(filename, line, f"Expected {len(columns)} cells, found {len(cells)}."))
            continue
        record, errors = {}, []
        for name, cell in zip(columns, cells, strict=False):
            try:
                record[name] = _from_cell(name, cell)
            except ValueError as error:
                errors.append(f"{name}: {error}")
        if errors:
            problems.extend(ImportProblem(filename, line, error) for error in errors)
            continue
        records.append((line, f"line {line}", record))
    return {}, records


_INT_CELLS = {"status", "severity", "readback_status", "readback_severity", "precision"}


def _from_cell(name: str, cell: str):
    if name in JSON_CELLS:
        if not cell:
            return None
        try:
            return parse_json(cell)
        except ValueError as error:  # a JSONDecodeError's msg leaves out the position in the cell
            raise ValueError(f"not valid JSON ({getattr(error, 'msg', error)})") from None
    if name in _INT_CELLS:
        if not cell.strip():
            return None
        try:
            return int(cell)
        except ValueError:
            raise ValueError(f"{cell!r} is not a whole number") from None
    if name == "age":
        if not cell.strip():
            return None
        try:
            return float(cell)
        except ValueError:
            raise ValueError(f"{cell!r} is not a number") from None
    if name == "connected":
        if cell.strip().lower() not in ("true", "false"):
            raise ValueError("use true or false")
        return cell.strip().lower() == "true"
    if name in ("timestamp", "readback_timestamp"):
        return cell or None
    return cell


# ---------------------------------------------------------------------------------------------
# Records to row tuples


def _rows(filename: str, records: list[tuple[int | None, str, dict]], problems: list) -> list[tuple]:
    """Row tuples (pv_id still None) of the valid records; a problem for each invalid one."""
    rows, seen = [], {}
    for line, place, record in records:
        errors: list[str] = []
        row = _row(record, errors)
        name = record.get("pv_name")
        if isinstance(name, str) and name in seen:
            errors.append(f"also on {seen[name]}")
        elif isinstance(name, str):
            seen[name] = place
        if errors:
            # CSV problems carry their line; JSON ones name the record.
            named = isinstance(name, str) and name
            where = (f"{name!r}" if named else "") if line is not None else (f"{place} ({name})" if named else place)
            prefix = f"{where}: " if where else ""
            problems.extend(ImportProblem(filename, line, f"{prefix}{error.rstrip('.')}.") for error in errors)
        else:
            rows.append(row)
    return rows


def _row(record: dict, errors: list[str]) -> tuple | None:
    def field(name, check, default=None):
        value = record.get(name, default)
        try:
            return check(value)
        except (TypeError, ValueError) as error:
            errors.append(f"{name}: {error}")
            return default

    pv_name = field("pv_name", _address)
    readback_name = field("readback_name", lambda v: _address(v) if v else "", "")
    value_type = field("value_type", _choice(_VALUE_TYPES))
    connected = field("connected", _boolean, True)
    if errors:
        return None
    setpoint = field("setpoint", lambda v: _value(value_type, v))
    readback = field("readback", lambda v: _value(value_type, v))
    setpoint_label = field("setpoint_label", _optional(_text))
    readback_label = field("readback_label", _optional(_text))
    if errors:
        return None
    if not ev.is_labelled(value_type) and (setpoint_label is not None or readback_label is not None):
        errors.append("only enum values have labels")
    if not connected and setpoint is not None:
        errors.append("a disconnected PV has no setpoint value")
    if connected and setpoint is None:
        errors.append("a connected PV needs a setpoint value (or connected false)")
    if errors:
        return None
    sp_type, sp_num, sp_str, sp_array = ev.to_columns(value_type, setpoint, setpoint_label)
    _, rb_num, rb_str, rb_array = ev.to_columns(value_type, readback, readback_label)
    return (
        None,
        pv_name,
        readback_name,
        value_type,
        sp_num,
        sp_str,
        sp_array,
        field("status", _optional(_smallint)),
        field("severity", _optional(_severity)),
        field("timestamp", _optional(_moment)),
        rb_num,
        rb_str,
        rb_array,
        field("readback_status", _optional(_smallint)),
        field("readback_severity", _optional(_severity)),
        field("readback_timestamp", _optional(_moment)),
        field("units", lambda v: _text(v, _UNITS_MAX), ""),
        field("precision", _optional(_smallint)),
        field("enum_labels", _optional(_labels)),
        field("source", _choice(_SOURCES), ValueSource.NONE.value),
        field("age", _optional(_number)),
        connected,
        field("reason", lambda v: _text(v, _REASON_MAX), ""),
    )


def _optional(check):
    return lambda value: None if value is None else check(value)


def _address(value) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("an EPICS address is required")
    if len(value) > _NAME_MAX:
        raise ValueError(f"longer than {_NAME_MAX} characters")
    if error := address_error(value):
        raise ValueError(error)
    return normalized(value)  # the registry's spelling: ca://X is the PV X


def _choice(choices):
    def check(value) -> str:
        if value not in choices:
            raise ValueError(f"{value!r} is not one of {', '.join(choices)}")
        return value

    return check


def _boolean(value) -> bool:
    if not isinstance(value, bool):
        raise ValueError("use true or false")
    return value


def _text(value, limit: int | None = None) -> str:
    if not isinstance(value, str):
        raise ValueError("must be text")
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    if limit is not None and len(value) > limit:
        raise ValueError(f"longer than {limit} characters")
    return value


def _number(value) -> float:
    if isinstance(value, str) and value in _NON_FINITE:
        return _NON_FINITE[value]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{value!r} is not a number")
    return float(value)


def _integer(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{value!r} is not a whole number")
    return value


def _smallint(value) -> int:
    if _integer(value) not in _SMALLINT:
        raise ValueError(f"{value} is out of range")
    return value


def _severity(value) -> int:
    if _integer(value) not in _SEVERITIES:
        raise ValueError(f"{value} is not an alarm severity (0-3)")
    return value


def _moment(value) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset")
    return moment


def _labels(value) -> list[str]:
    if not isinstance(value, list):
        raise ValueError("must be a list of labels")
    return [_text(label, _LABEL_MAX) for label in value]


def _value(value_type: str, value):
    """The stored value of a record's setpoint or readback, checked against its type."""
    if value is None:
        return None
    spec = ev.SPECS.get(value_type)
    if spec is None:
        raise ValueError(f"a {value_type} value must be empty")
    check = {float: _number, int: _integer, str: _text}[spec.element]
    return [check(item) for item in _list(value)] if spec.array else check(value)


def _list(value) -> list:
    if not isinstance(value, list):
        raise ValueError("must be a list")
    return value


# ---------------------------------------------------------------------------------------------


def _link_pvs(rows: list[tuple]) -> None:
    """Set each row's PV id from the registry, by setpoint address (None when unknown)."""
    names = [row[1] for row in rows]
    ids = dict(PV.objects.filter(setpoint_address__in=in_array(names, "text")).values_list("setpoint_address", "id"))
    rows[:] = [(ids.get(row[1]), *row[1:]) for row in rows]


def _mode(stated, rows: list[tuple]) -> str:
    """The file's mode if it states one, else what its values' sources add up to."""
    if stated in SnapshotMode.values:
        return stated
    sources = {row[values.ROW_COLUMNS.index("source")] for row in rows} - {ValueSource.NONE}
    if sources == {ValueSource.CACHE}:
        return SnapshotMode.CACHE
    return SnapshotMode.HYBRID if ValueSource.CACHE in sources else SnapshotMode.DIRECT
