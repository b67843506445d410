"""The save files other tools write, read as lists of saved PVs, and a snapshot written as one.

Three formats, told apart by their content (the file name's extension only as a hint):

- **autosave** ``.sav`` (EPICS autosave's save_restore, what every IOC with autosave writes): a first
  line ``# <version><TAB>Automatically generated - DO NOT MODIFY - <yymmdd-HHMMSS>``, optionally
  ``! N channel(s) not connected ...``, then one ``NAME value`` line per PV (the value is the rest of
  the line after one space, possibly empty or with spaces), arrays as
  ``NAME @array@ { "v1" "v2" }`` (quoted elements, ``\\"`` and ``\\\\`` escaped),
  ``#NAME Search Issued`` for a PV autosave could not reach, other ``#`` lines as comments, and
  ``<END>`` as the last line. A file without ``<END>`` was cut short while written: autosave refuses
  to restore it, and so does this import.
- **PSI snapshot** ``.snap`` (paulscherrerinstitute/snapshot): ``#{...}`` JSON metadata on the first
  line, then ``NAME,<JSON>`` lines, where the JSON is the value itself (older files) or an object
  with ``val`` and optional ``egu`` and ``prec``; a line with the name alone is a PV that had no
  value.
- **BURT** ``.snap``: ``--- Start BURT header`` ... ``--- End BURT header`` (with ``Time:`` and
  ``Comments:`` lines), then ``[RO|RON|-] NAME COUNT VALUE...`` lines; a value in double quotes may
  hold spaces, ``\\0`` is the empty string, ``%`` starts a comment line; a COUNT of 0 means no value.

Each parser returns a :class:`SaveFile`: every entry with the line it came from; every problem is
appended to `problems` (an ImportProblem with file and line). The kind of each value is decided
once, by :func:`typed_value` (docs/snapshots.md, "The kind of a value from a save file").

:func:`export_snapshot_sav` writes a snapshot as an autosave file that dbrestore reads back.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from pvs.importers import ImportProblem
from squirrel_site import epics_values as ev
from squirrel_site.untrusted import parse_json

AUTOSAVE, PSI, BURT = "autosave", "psi-snapshot", "burt"
FORMAT_LABELS = {AUTOSAVE: "autosave .sav", PSI: "PSI snapshot .snap", BURT: "BURT .snap"}
ARRAY_MARKER = "@array@"
END_MARKER = "<END>"
AUTOSAVE_HEADER = "Automatically generated - DO NOT MODIFY - "
# autosave writes the save time as yymmdd-HHMMSS (older versions: mm/dd/yy HH:MM:SS), IOC local time.
_AUTOSAVE_TIMES = ("%y%m%d-%H%M%S", "%m/%d/%y %H:%M:%S")
# BURT writes asctime(): "Tue Dec 11 17:52:57 2018".
_BURT_TIME = "%a %b %d %H:%M:%S %Y"
# A scalar value longer than this is refused (an EPICS long string is at most a few kB); arrays
# are bounded by the upload size alone.
MAX_SCALAR_CHARS = 65_536
MAX_ARRAY_ELEMENTS = 10_000_000
_NOT_CONNECTED = re.compile(r"^#(\S+)\s+(Search Issued|not connected.*|disconnected.*)$", re.IGNORECASE)
# One quoted array element after optional blanks ('\\' escapes the next character), and an escape.
_ELEMENT = re.compile(r'\s*"([^"\\]*(?:\\.[^"\\]*)*)"', re.S)
_ESCAPED = re.compile(r"\\(.)", re.S)
_ARRAY = re.compile(r'\{(?:\s*"[^"\\]*(?:\\.[^"\\]*)*")*\s*\}', re.S)
_BLANK = re.compile(r"\s")
_INT_TEXT = re.compile(r"^[+-]?\d+$")
_FLOAT_TEXT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_NON_FINITE_TEXT = {"nan": math.nan, "+nan": math.nan, "-nan": math.nan, "inf": math.inf, "+inf": math.inf}
_NON_FINITE_TEXT.update({"-inf": -math.inf, "infinity": math.inf, "-infinity": -math.inf, "+infinity": math.inf})
_EXACT_INT = 2**53  # integer text beyond this is no exact integer in a double: a float


@dataclass
class Entry:
    """One PV of a save file: `value` is text (str, or list[str] for an array) unless `typed`
    (the file's JSON said what it is), None for a PV the file records without a value."""

    line: int
    name: str
    value: object = None
    typed: bool = False
    reason: str = ""
    units: str = ""
    precision: int | None = None


@dataclass
class SaveFile:
    format: str
    entries: list[Entry] = field(default_factory=list)
    saved_at: datetime | None = None
    comment: str = ""


def sniff(filename: str, text: str) -> str:
    """The save-file format of a .sav or .snap file, by its first line, else by its extension (a
    .snap that is not BURT's is read as PSI's, whose parser then says what is missing)."""
    first = text.split("\n", 1)[0].rstrip("\r")
    if first.startswith("--- Start BURT header"):
        return BURT
    if first.startswith("#{"):
        return PSI
    if AUTOSAVE_HEADER in first or filename.lower().endswith(".sav"):
        return AUTOSAVE
    return PSI


def parse(fmt: str, filename: str, text: str, problems: list[ImportProblem]) -> SaveFile:
    """The entries of a save file of format `fmt` (one of AUTOSAVE, PSI, BURT)."""
    return {AUTOSAVE: _parse_autosave, PSI: _parse_psi, BURT: _parse_burt}[fmt](filename, text, problems)


def _lines(text: str):
    """(line number, line without its end) of `text`, CRLF or LF."""
    for number, line in enumerate(text.split("\n"), start=1):
        yield number, line.removesuffix("\r")


def _name(filename: str, number: int, name: str, problems: list) -> str | None:
    """A PV name as Channel Access knows it: ``X.VAL`` is the record X's value, the registry's X."""
    if not name or _BLANK.search(name):
        problems.append(ImportProblem(filename, number, f"{name!r} is not a PV name."))
        return None
    return name.removesuffix(".VAL")


def _too_long(filename: str, number: int, value: str, problems: list) -> bool:
    if len(value) > MAX_SCALAR_CHARS:
        problems.append(ImportProblem(filename, number, f"The value is longer than {MAX_SCALAR_CHARS:,} characters."))
        return True
    return False


# ---------------------------------------------------------------------------------------------
# autosave


def _parse_autosave(filename: str, text: str, problems: list) -> SaveFile:
    saved = SaveFile(AUTOSAVE)
    lines = list(_lines(text))
    while lines and not lines[-1][1].strip():
        lines.pop()
    if not lines:
        problems.append(ImportProblem(filename, None, "The file is empty."))
        return saved
    first = lines[0][1]
    if first.startswith("&"):
        problems.append(ImportProblem(filename, 1, "autosave was still writing this file (it starts with '&')."))
        return saved
    if not first.startswith("#"):
        problems.append(
            ImportProblem(filename, 1, "Not an autosave file: the first line must be autosave's '# ...' header.")
        )
        return saved
    if AUTOSAVE_HEADER in first:
        saved.saved_at = _autosave_time(first.split(AUTOSAVE_HEADER, 1)[1].strip())
    if lines[-1][1].strip() != END_MARKER:
        problems.append(
            ImportProblem(
                filename,
                lines[-1][0],
                f"The file does not end with {END_MARKER}: it was cut short while written (autosave refuses it too).",
            )
        )
        return saved
    lines.pop()
    index = 1
    while index < len(lines):
        number, line = lines[index]
        index += 1
        if not line.strip() or line.startswith("!"):
            continue
        if line.strip() == END_MARKER:
            problems.append(ImportProblem(filename, number, f"{END_MARKER} before the end of the file."))
            continue
        if line.startswith("#"):
            missing = _NOT_CONNECTED.match(line.strip())
            if missing and (name := _name(filename, number, missing.group(1), problems)):
                reason = f"Not connected when autosave wrote the file ({missing.group(2)})"
                saved.entries.append(Entry(number, name, None, reason=reason))
            continue
        name, _, value = line.partition(" ")
        name = _name(filename, number, name, problems)
        if name is None:
            continue
        if value.startswith(ARRAY_MARKER):
            # autosave writes an array on one line: a line without its '}' was cut.
            elements = _array_elements(filename, number, value[len(ARRAY_MARKER) :], problems)
            if elements is not None:
                saved.entries.append(Entry(number, name, elements))
        elif not _too_long(filename, number, value, problems):
            saved.entries.append(Entry(number, name, value))
    return saved


def _autosave_time(text: str) -> datetime | None:
    for pattern in _AUTOSAVE_TIMES:
        try:
            return timezone.make_aware(datetime.strptime(text, pattern))
        except ValueError:
            continue
    return None


def _array_elements(filename: str, number: int, body: str, problems: list) -> list[str] | None:
    """The elements of ``{ "v1" "v2" }`` (escapes undone); None, with a problem, if malformed.
    Regular expressions, not a loop over characters: a line of millions of characters stays quick."""
    text = body.strip()
    if not text.startswith("{"):
        problems.append(ImportProblem(filename, number, f"Expected '{{' after {ARRAY_MARKER}."))
        return None
    if _ARRAY.fullmatch(text):  # the usual case, in two C-speed passes
        elements = [_ESCAPED.sub(r"\1", item) if "\\" in item else item for item in _ELEMENT.findall(text)]
        if len(elements) > MAX_ARRAY_ELEMENTS:
            problems.append(ImportProblem(filename, number, f"More than {MAX_ARRAY_ELEMENTS:,} array elements."))
            return None
        return elements
    position = 1  # malformed: find where, for the message
    while match := _ELEMENT.match(text, position):
        position = match.end()
    rest = text[position:].lstrip()
    if rest.startswith("}"):
        message = "Text after the array's closing '}'."
    elif rest.startswith('"'):
        message = "An array element's quote is not closed."
    elif not rest:
        message = "The array is not closed with '}' on its line."
    else:
        message = 'Array elements must be in double quotes ("1" "2").'
    problems.append(ImportProblem(filename, number, message))
    return None


# ---------------------------------------------------------------------------------------------
# PSI snapshot


def _parse_psi(filename: str, text: str, problems: list) -> SaveFile:
    saved = SaveFile(PSI)
    meta_seen = False
    for number, line in _lines(text):
        if not line.strip():
            continue
        if line.startswith("#"):
            if not meta_seen and number == 1:
                meta_seen = True
                try:
                    meta = parse_json(line[1:])
                except ValueError as error:
                    problems.append(ImportProblem(filename, number, f"The metadata is not JSON: {error}"))
                    continue
                if not isinstance(meta, dict):
                    problems.append(ImportProblem(filename, number, "The metadata must be a JSON object."))
                    continue
                saved.comment = _psi_comment(meta)
                saved.saved_at = _psi_time(meta.get("save_time") or meta.get("time"))
            continue
        name, comma, encoded = line.strip().partition(",")
        name = _name(filename, number, name, problems)
        if name is None:
            continue
        if not comma:
            saved.entries.append(Entry(number, name, None, reason="No value in the file (not connected when saved)"))
            continue
        try:
            value = parse_json(encoded)
        except ValueError as error:
            problems.append(ImportProblem(filename, number, f"{name!r}: the value is not JSON ({error})."))
            continue
        units, precision = "", None
        if isinstance(value, dict):
            if "val" not in value:
                problems.append(ImportProblem(filename, number, f'{name!r}: a value object needs "val".'))
                continue
            units = value.get("egu") if isinstance(value.get("egu"), str) else ""
            precision = value.get("prec") if type(value.get("prec")) is int else None
            value = value["val"]
        if value is None:
            saved.entries.append(Entry(number, name, None, reason="No value in the file"))
            continue
        if isinstance(value, str) and _too_long(filename, number, value, problems):
            continue
        saved.entries.append(Entry(number, name, value, typed=True, units=units[:40], precision=precision))
    if not meta_seen:
        problems.append(ImportProblem(filename, 1, "A PSI snapshot file starts with its '#{...}' metadata line."))
    return saved


def _psi_comment(meta: dict) -> str:
    parts = []
    if isinstance(meta.get("comment"), str) and meta["comment"].strip():
        parts.append(meta["comment"].strip())
    labels = meta.get("labels")
    if isinstance(labels, list) and labels and all(isinstance(label, str) for label in labels):
        parts.append("Labels: " + ", ".join(labels))
    return "\n".join(parts)


def _psi_time(value) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else timezone.make_aware(moment)


# ---------------------------------------------------------------------------------------------
# BURT


def _parse_burt(filename: str, text: str, problems: list) -> SaveFile:
    saved = SaveFile(BURT)
    in_header = header_closed = False
    for number, line in _lines(text):
        stripped = line.strip()
        if stripped.startswith("--- Start BURT header"):
            in_header = True
            continue
        if stripped.startswith("--- End BURT header"):
            in_header, header_closed = False, True
            continue
        if in_header:
            key, _, rest = stripped.partition(":")
            if key == "Time":
                try:
                    saved.saved_at = timezone.make_aware(datetime.strptime(" ".join(rest.split()), _BURT_TIME))
                except ValueError:
                    problems.append(ImportProblem(filename, number, f"{rest.strip()!r} is not a BURT time."))
            elif key == "Comments" and rest.strip():
                saved.comment = rest.strip()
            continue
        if not stripped or stripped.startswith("%"):
            continue
        if not header_closed:
            problems.append(ImportProblem(filename, number, "Values before '--- End BURT header'."))
            return saved
        words = _burt_words(stripped)
        if words is None:
            problems.append(ImportProblem(filename, number, "A quoted value is not closed."))
            continue
        if words and words[0] in ("RO", "RON", "-"):
            words = words[1:]
        if len(words) < 2:
            problems.append(ImportProblem(filename, number, "Expected 'NAME COUNT VALUE...'."))
            continue
        name = _name(filename, number, words[0], problems)
        if name is None:
            continue
        if not _INT_TEXT.match(words[1]) or int(words[1]) < 0:
            problems.append(ImportProblem(filename, number, f"{name!r}: the count {words[1]!r} is not a whole number."))
            continue
        count, values = int(words[1]), [("" if word == "\\0" else word) for word in words[2:]]
        if count == 0:
            saved.entries.append(Entry(number, name, None, reason="No value in the file (BURT count 0)"))
        elif len(values) != count:
            problems.append(ImportProblem(filename, number, f"{name!r}: count {count} but {len(values)} values."))
        elif count == 1:
            if not _too_long(filename, number, values[0], problems):
                saved.entries.append(Entry(number, name, values[0]))
        else:
            saved.entries.append(Entry(number, name, values))
    if not header_closed:
        problems.append(ImportProblem(filename, None, "The BURT header is not closed ('--- End BURT header')."))
    return saved


def _burt_words(line: str) -> list[str] | None:
    """The words of a BURT line: blank-separated, a double-quoted word may hold blanks."""
    words, position, size = [], 0, len(line)
    while position < size:
        if line[position].isspace():
            position += 1
        elif line[position] == '"':
            end = line.find('"', position + 1)
            if end == -1:
                return None
            words.append(line[position + 1 : end])
            position = end + 1
        else:
            end = position
            while end < size and not line[end].isspace():
                end += 1
            words.append(line[position:end])
            position = end
    return words


# ---------------------------------------------------------------------------------------------
# The kind rule


def _kind(element: type, array: bool) -> str:
    """The plain kind (no labels, writable) of `element` values, one or an array: chosen by its
    spec, as every decision on a kind is (squirrel_site/epics_values.py)."""
    matching = ev.kinds(element=element, array=array, labelled=False, writable=True)
    return next(kind for kind in ev.SPECS if kind in matching)


class KindError(ValueError):
    """A value that is of no kind Squirrel stores (an overflowing number, a nested list...)."""


def typed_value(entry: Entry, known: str | None) -> tuple[str, object]:
    """(kind, value) of a save file's entry, decided once for every format:

    1. `known` (the kind the registry PV's newest snapshot saved) wins when the value reads as it:
       an ``enum`` from its index, a ``float`` from an integer's text, ``float_array`` from a list
       of numbers, ``string`` from any text;
    2. else what the file says (PSI's JSON: int, float, string, list);
    3. else the text's shape: integer text is an ``int``, other number text (incl. ``nan``,
       ``inf``) a ``float``, anything else a ``string`` (an enum's label stays text); an array is
       ``int_array`` if every element is integer text, ``float_array`` if every one is a number,
       else ``string_array``.

    A number that overflows a double (``1e400``) is refused, not stored as infinity.
    """
    value = entry.value
    spec = ev.spec_of(known) if known else None
    if spec is not None and spec.writable:
        converted = _as_kind(spec, value)
        if converted is not None:
            return known, converted
    if entry.typed:
        return _from_json(value)
    if isinstance(value, list):
        if all(_INT_TEXT.match(item) and abs(int(item)) <= _EXACT_INT for item in value):
            return _kind(int, True), [int(item) for item in value]
        numbers = [_number(item) for item in value]
        if value and all(number is not None for number in numbers):
            return _kind(float, True), numbers
        return _kind(str, True), list(value)
    if _INT_TEXT.match(value) and abs(int(value)) <= _EXACT_INT:
        return _kind(int, False), int(value)
    number = _number(value)
    if number is not None:
        return _kind(float, False), number
    return _kind(str, False), value


def _number(text: str) -> float | None:
    """The float `text` spells (C's %g output, nan and inf included); None if not a number.
    KindError for a number too large for a double."""
    stripped = text.strip()
    if stripped.lower() in _NON_FINITE_TEXT:
        return _NON_FINITE_TEXT[stripped.lower()]
    if not _FLOAT_TEXT.match(stripped):
        return None
    number = float(stripped)
    if math.isinf(number):
        raise KindError(f"{stripped!r} is too large for a double")
    return number


def _as_kind(spec: ev.KindSpec, value) -> object | None:
    """`value` (text, a list of texts, or typed JSON) as a value of `spec`'s kind; None if it is not."""
    try:
        if spec.array != isinstance(value, list):
            return None
        items = value if spec.array else [value]
        if spec.element is str:
            converted = [item if isinstance(item, str) else None for item in items]
        elif spec.element is int:
            converted = [_whole(item) for item in items]
        else:
            converted = [_float(item) for item in items]
    except KindError:
        return None
    if any(item is None for item in converted):
        return None
    return converted if spec.array else converted[0]


def _whole(item) -> int | None:
    if type(item) is int:
        return item
    if isinstance(item, str) and _INT_TEXT.match(item.strip()):
        return int(item)
    return None


def _float(item) -> float | None:
    if type(item) in (int, float):
        return float(item)
    if isinstance(item, str):
        return _number(item)
    return None


def _from_json(value) -> tuple[str, object]:
    if isinstance(value, bool):
        return _kind(int, False), int(value)
    if isinstance(value, int):
        if abs(value) > _EXACT_INT:
            return _kind(float, False), float(value)
        return _kind(int, False), value
    if isinstance(value, float):
        return _kind(float, False), value
    if isinstance(value, str):
        return _kind(str, False), value
    if isinstance(value, list):
        if all(type(item) is int for item in value) and value:
            return _kind(int, True), value
        if value and all(type(item) in (int, float) for item in value):
            return _kind(float, True), [float(item) for item in value]
        if all(isinstance(item, str) for item in value):
            return _kind(str, True), value
        raise KindError("an array must hold only numbers or only text")
    raise KindError(f"a {type(value).__name__} value is of no kind Squirrel stores")


# ---------------------------------------------------------------------------------------------
# Export


def sav_header(moment: datetime, version: str = "Squirrel export") -> str:
    """autosave's first line, with `moment` in the server's time zone as autosave writes it."""
    stamp = timezone.localtime(moment).strftime(_AUTOSAVE_TIMES[0])
    return f"# {version}\t{AUTOSAVE_HEADER}{stamp}\n"


def sav_number(value: float) -> str:
    """A number as dbrestore reads it back to the same double (repr; nan and inf as %g writes them)."""
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    return str(value)


def sav_quoted(text: str) -> str:
    """An array element in double quotes, with '\\' and '"' escaped as autosave writes them."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sav_line(name: str, kind: str, value) -> str:
    """The line of one PV's value in a .sav file, or a '#' comment line saying why it has none."""
    spec = ev.spec_of(kind)
    if value is None or spec is None:
        return f"#{name} Search Issued\n"
    if not spec.writable:
        return f"# {name} skipped: a pvAccess structure, which autosave cannot save or restore\n"
    if spec.array:
        items = [item if spec.element is str else sav_number(item) for item in value]
        if any("\n" in item or "\r" in item for item in items):
            return f"# {name} skipped: an element holds a line break, which a .sav file cannot hold\n"
        return f"{name} {ARRAY_MARKER} {{ {' '.join(sav_quoted(item) for item in items)} }}\n"
    if spec.element is str:
        if "\n" in value or "\r" in value:
            return f"# {name} skipped: its text holds a line break, which a .sav file cannot hold\n"
        return f"{name} {value}\n"
    return f"{name} {sav_number(value)}\n"


def export_snapshot_sav(snapshot, stream) -> None:
    """Write `snapshot` as an autosave .sav file (header, one line per PV, <END>) to a text stream.

    Values are written at full precision (repr, which dbrestore's strtod reads back exactly); an
    enum as its index, as autosave saves one; a PV without a value as autosave's
    ``#NAME Search Issued``; a structure as a comment saying why it is not there.
    """
    from snapshots.capture.exporters import value_records

    stream.write(sav_header(snapshot.created_at))
    missing = snapshot.values.filter(connected=False).count()
    if missing:
        stream.write(f"! {missing} channel(s) not connected - or not all gets were successful\n")
    for record in value_records(snapshot):
        stream.write(sav_line(record["pv_name"], record["value_type"], record["setpoint"]))
    stream.write(f"{END_MARKER}\n")
