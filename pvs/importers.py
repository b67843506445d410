"""Import of the PV registry from CSV (SLAC's format, extended) and EPICS autosave .req files.

Parsing turns a file into `RegistryRow`s and `ImportProblem`s without touching the database;
`_Plan` compares the rows with the registry in a few bulk queries and writes the differences in
one transaction. Any problem anywhere means nothing is written. docs/import_format.md describes
both formats for operators.
"""

import csv
import functools
import io
import os
import re
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from pvs.models import PV
from pvs.protocols import normalized
from pvs.validators import address_error, validate_tolerance
from squirrel_site import safe_csv
from squirrel_site.bulk_sql import copy_rows, in_array, update_rows
from squirrel_site.untrusted import TextError, decode_text, parse_json_prefix
from tags.models import Tag, TagGroup, validate_tag_name

IncludeLoader = Callable[[str, str], tuple[str, str]]

NAME_MAX_LENGTH = TagGroup._meta.get_field("name").max_length
DEVICE_MAX_LENGTH = PV._meta.get_field("device").max_length
DESCRIPTION_MAX_LENGTH = PV._meta.get_field("description").max_length
STAGE_MAX = 32767  # PositiveSmallIntegerField
MACRO_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MACRO_NESTING_MAX = 16


@dataclass(frozen=True)
class ImportProblem:
    """One reason an import cannot be applied, with where it was found."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        if self.line is None:
            return f"{self.file}: {self.message}"
        return f"{self.file}:{self.line}: {self.message}"


@dataclass
class ImportReport:
    """What an import did, or would do (dry run): PV counts, tags it creates, every problem, and
    the addresses of the PVs it writes."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    new_tags: list[str] = field(default_factory=list)
    errors: list[ImportProblem] = field(default_factory=list)
    applied: bool = False
    addresses: list[str] = field(default_factory=list)  # of the new and updated PVs, sorted

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass
class RegistryRow:
    """One PV as a file gives it: only the fields and tag groups the file has columns for."""

    file: str
    line: int
    setpoint_address: str
    fields: dict[str, object]
    tags: dict[str, set[str]]


# Cell parsers take the raw cell and raise ValueError with the reason; an empty cell is the
# model's default, so a present column always sets its field.
def _parse_address(cell: str) -> str:
    """An address in the registry's spelling (``ca://X`` is ``X``, ``PVA://X`` is ``pva://X``)."""
    address = cell.strip()
    error = address_error(address) if address else None
    if error:
        raise ValueError(error)
    return normalized(address)


def _parse_description(cell: str) -> str:
    if len(cell) > DESCRIPTION_MAX_LENGTH:
        raise ValueError(f"Longer than {DESCRIPTION_MAX_LENGTH} characters.")
    return cell


def _parse_device(cell: str) -> str:
    device = cell.strip()
    if len(device) > DEVICE_MAX_LENGTH:
        raise ValueError(f"Longer than {DEVICE_MAX_LENGTH} characters.")
    return device


def _parse_tolerance(cell: str) -> float:
    text = cell.strip()
    if not text:
        return 0.0
    try:
        value = float(text)
    except ValueError:
        raise ValueError("Not a number.") from None
    try:
        validate_tolerance(value)
    except ValidationError as error:
        raise ValueError(error.messages[0]) from None
    return value


_TRUE = {"true", "yes", "1"}
_FALSE = {"false", "no", "0", ""}


def _parse_bool(cell: str) -> bool:
    text = cell.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("Not a boolean; use true/false, yes/no or 1/0.")


def _parse_stage(cell: str) -> int:
    text = cell.strip()
    if not text:
        return 0
    if not re.fullmatch(r"[0-9]+", text) or int(text) > STAGE_MAX:
        raise ValueError(f"The restore stage must be a whole number from 0 to {STAGE_MAX}.")
    return int(text)


def _format_bool(value: bool) -> str:
    return "true" if value else "false"


@dataclass(frozen=True)
class Column:
    """A registry CSV column that holds one PV field (the others hold tag groups)."""

    header: str
    field: str
    parse: Callable[[str], object]
    format: Callable[[object], str]


SETPOINT_HEADER = "Setpoint"
READBACK = Column("Readback", "readback_address", _parse_address, str)
# In export order, after Setpoint; the importer recognises them in any order and any case.
FIELD_COLUMNS: tuple[Column, ...] = (
    READBACK,
    Column("Description", "description", _parse_description, str),
    Column("Config", "config_address", _parse_address, str),
    Column("Device", "device", _parse_device, str),
    # repr() is the shortest text that parses back to the same float.
    Column("Abs Tolerance", "abs_tolerance", _parse_tolerance, repr),
    Column("Rel Tolerance", "rel_tolerance", _parse_tolerance, repr),
    Column("Read Only", "read_only", _parse_bool, _format_bool),
    Column("Restore Stage", "restore_stage", _parse_stage, str),
    Column("Wait For Completion", "wait_for_completion", _parse_bool, _format_bool),
)
_COLUMNS_BY_KEY = {column.header.lower(): column for column in FIELD_COLUMNS}


@functools.lru_cache(maxsize=4096)  # a file repeats a few tag names thousands of times
def _tag_name_error(name: str) -> str | None:
    if len(name) > NAME_MAX_LENGTH:
        return f"Longer than {NAME_MAX_LENGTH} characters."
    try:
        validate_tag_name(name)
    except ValidationError as error:
        return error.messages[0]
    return None


# ---------------------------------------------------------------------------------------------
# CSV


@dataclass
class _CsvLayout:
    width: int
    setpoint: int
    readback: int
    fields: list[tuple[int, Column]]
    groups: list[tuple[int, str]]


def _csv_layout(name: str, header: list[str], problems: list[ImportProblem]) -> _CsvLayout | None:
    """Where each column is; None when Setpoint or Readback is missing (rows cannot be read)."""
    seen: set[str] = set()
    positions: dict[str, int] = {}
    fields: list[tuple[int, Column]] = []
    groups: list[tuple[int, str]] = []
    for index, raw in enumerate(header):
        title = raw.strip()
        key = title.lower()
        if key in {SETPOINT_HEADER.lower(), *_COLUMNS_BY_KEY}:
            # Known columns are matched case-insensitively, so "device" and "Device" clash.
            seen_key = key
        else:
            seen_key = title
        if seen_key in seen:
            problems.append(ImportProblem(name, 1, f"Column {title!r} appears more than once."))
            continue
        seen.add(seen_key)
        if key == SETPOINT_HEADER.lower():
            positions["setpoint"] = index
        elif key == READBACK.header.lower():
            positions["readback"] = index
        elif key in _COLUMNS_BY_KEY:
            fields.append((index, _COLUMNS_BY_KEY[key]))
        elif not title:
            problems.append(ImportProblem(name, 1, f"Column {index + 1} has no name."))
        elif error := _tag_name_error(title):
            problems.append(ImportProblem(name, 1, f"Tag group {title!r}: {error}"))
        else:
            groups.append((index, title))
    if "setpoint" not in positions or "readback" not in positions:
        problems.append(
            ImportProblem(
                name,
                1,
                "The header must have Setpoint and Readback columns "
                "(Setpoint,Readback,Description,<one column per tag group>).",
            )
        )
        return None
    return _CsvLayout(len(header), positions["setpoint"], positions["readback"], fields, groups)


def _csv_row(
    name: str, line: int, cells: list[str], layout: _CsvLayout, problems: list[ImportProblem]
) -> RegistryRow | None:
    """The row's PV, or None after recording its problems."""
    before = len(problems)

    def problem(message: str) -> None:
        problems.append(ImportProblem(name, line, message))

    values: dict[str, object] = {}
    for index, column in [(layout.readback, READBACK), *layout.fields]:
        try:
            values[column.field] = column.parse(cells[index])
        except ValueError as error:
            problem(f"{column.header} {cells[index]!r}: {error}")
    setpoint = cells[layout.setpoint].strip()
    if setpoint:
        if error := address_error(setpoint):
            problem(f"{SETPOINT_HEADER} {setpoint!r}: {error}")
        setpoint = normalized(setpoint)
    elif values.get("readback_address"):
        # SLAC's format: a row with only a readback is a PV that is read, never written.
        setpoint = values["readback_address"]
        values["readback_address"] = ""
        read_only_cell = next((cells[i] for i, column in layout.fields if column.field == "read_only"), "")
        if read_only_cell.strip() and values.get("read_only") is False:
            problem("A row with only a Readback is read-only; Read Only cannot be false.")
        values["read_only"] = True
    elif not cells[layout.readback].strip():
        problem("Setpoint and Readback are both empty; a PV needs at least one of them.")
    tags: dict[str, set[str]] = {}
    for index, group in layout.groups:
        names = {part.strip() for part in cells[index].split(",")} - {""}
        for tag in sorted(names):
            if error := _tag_name_error(tag):
                problem(f"{group} tag {tag!r}: {error}")
        tags[group] = names
    if len(problems) > before:
        return None
    return RegistryRow(name, line, setpoint, values, tags)


def _parse_csv(name: str, text: str, problems: list[ImportProblem]) -> list[RegistryRow]:
    reader = safe_csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[RegistryRow] = []
    try:
        header = next(reader, None)
        if header is None:
            problems.append(ImportProblem(name, None, "The file is empty; it needs a header line."))
            return rows
        layout = _csv_layout(name, header, problems)
        if layout is None:
            return rows
        last_line = reader.line_num
        for cells in reader:
            # A quoted cell may span lines; report the line the row starts on.
            line, last_line = last_line + 1, reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) != layout.width:
                problems.append(
                    ImportProblem(name, line, f"Expected {layout.width} columns as in the header, found {len(cells)}.")
                )
                continue
            row = _csv_row(name, line, cells, layout, problems)
            if row is not None:
                rows.append(row)
    except csv.Error as error:
        problems.append(ImportProblem(name, reader.line_num or 1, f"Malformed CSV ({error}); stopped reading here."))
    return rows


# ---------------------------------------------------------------------------------------------
# .req (EPICS autosave request files)


def _closing(text: str, open_index: int) -> int:
    """Index of the bracket that closes the one at `open_index`, allowing nested macros."""
    opener = text[open_index]
    closer = ")" if opener == "(" else "}"
    depth = 0
    for index in range(open_index, len(text)):
        if text[index] == opener:
            depth += 1
        elif text[index] == closer:
            depth -= 1
            if depth == 0:
                return index
    raise ValueError(f"Unterminated macro reference '${text[open_index:]}'.")


def expand_macros(text: str, macros: Mapping[str, str], *, depth: int = 0) -> str:
    """Substitute $(NAME), ${NAME} and $(NAME=default); raise ValueError for an undefined macro.

    A reference inside a name or a default ($(A$(B)), $(A=$(B))) is expanded first, at most
    MACRO_NESTING_MAX deep: a file of "$($($(..." would otherwise exhaust Python's stack.
    """
    if depth > MACRO_NESTING_MAX:
        raise ValueError(f"Macro references are nested more than {MACRO_NESTING_MAX} deep.")
    parts = []
    start = 0
    while (dollar := text.find("$", start)) != -1:
        if text[dollar + 1 : dollar + 2] not in ("(", "{"):
            parts.append(text[start : dollar + 1])
            start = dollar + 1
            continue
        end = _closing(text, dollar + 1)
        body = text[dollar + 2 : end]
        macro, has_default, default = body.partition("=")
        macro = expand_macros(macro, macros, depth=depth + 1)
        parts.append(text[start:dollar])
        if macro in macros:
            parts.append(macros[macro])
        elif has_default:
            parts.append(expand_macros(default, macros, depth=depth + 1))
        else:
            raise ValueError(f"Undefined macro {macro!r} (no value given and no default).")
        start = end + 1
    parts.append(text[start:])
    return "".join(parts)


def _parse_macro_definitions(text: str) -> dict[str, str]:
    """NAME=VALUE definitions as autosave reads them on a `file` line: double quotes dropped, and
    spaces or commas (any run of them) between definitions. PSI's quoted "A=1,B=2" reads the same."""
    macros = {}
    for part in _DEFINITION_SEPARATORS.split(text.replace('"', "")):
        if not part:
            continue
        macro, has_value, value = part.partition("=")
        if not has_value or not MACRO_NAME_RE.fullmatch(macro):
            raise ValueError(f"Expected NAME=VALUE in the macro list, found {part!r}.")
        if len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]
        macros[macro] = value
    return macros


_DEFINITION_SEPARATORS = re.compile(r"[\s,]+")
# `file` as autosave's reader knows it: the word, then a space, a quote or the end of the line.
_AUTOSAVE_INCLUDE = re.compile(r'file(?=[\s"]|$)')
# After a `file` line's macros, a # that follows a space starts a comment.
_TRAILING_COMMENT = re.compile(r"\s#.*")


def _parse_autosave_include(rest: str) -> tuple[str, dict[str, str]]:
    """The file name and macros of an autosave `file NAME MACROS` line (the text after `file`).

    As autosave's reader takes it: the name may be quoted, and ends at a space, a quote, a comma or
    a #; the macros may be quoted, and spaces or commas separate them.
    """
    match = re.match(r'\s*"?\s*([^\s",#]*)"?', rest)
    name = match.group(1)
    if not name:
        raise ValueError("'file' needs the name of the file to include.")
    return name, _parse_macro_definitions(_TRAILING_COMMENT.sub("", rest[match.end() :]))


def _parse_psi_include(rest: str) -> tuple[str, dict[str, str]]:
    """The path and macros of a PSI snapshot include, `!path.req, "NAME=VALUE,..."` (after `!`);
    PSI quotes the macro list with " or '."""
    path, _, definitions = rest.partition(",")
    path = path.strip()
    if not path:
        raise ValueError("'!' needs the path of the file to include.")
    definitions = definitions.strip()
    if len(definitions) >= 2 and definitions[0] == definitions[-1] == "'":
        definitions = definitions[1:-1]
    return path, _parse_macro_definitions(definitions)


def _parse_req(
    name: str,
    text: str,
    macros: Mapping[str, str],
    loader: IncludeLoader | None,
    problems: list[ImportProblem],
    chain: tuple[str, ...],
) -> list[RegistryRow]:
    """The PVs of an autosave or PSI snapshot request file and of the files it includes.

    Each line is macro-expanded whole first, as autosave's reader does; then it is a comment (#),
    an include (autosave's `file NAME MACROS`, PSI's `!path, "MACROS"`) or a PV (its first word;
    PSI's per-PV options after a comma are ignored).
    """
    rows: list[RegistryRow] = []
    try:
        text = _without_psi_header(text)
    except ValueError as error:
        problems.append(ImportProblem(name, 1, str(error)))
        return rows
    for line, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            expanded = expand_macros(stripped, macros).strip()
            if not expanded or expanded.startswith("#"):
                continue
            include = None
            if expanded.startswith("!"):
                include = _parse_psi_include(expanded[1:])
            elif _AUTOSAVE_INCLUDE.match(expanded):
                include = _parse_autosave_include(expanded[4:])
            if include is not None:
                include_name, include_macros = include
                rows += _include(name, include_name, {**macros, **include_macros}, loader, problems, chain)
                continue
        except ValueError as error:
            problems.append(ImportProblem(name, line, str(error)))
            continue
        # A comma is never part of an address: it ends the PV, as in PSI's "NAME,{options}". An
        # address may say its protocol (pva://NAME), as other tools' request files do.
        address = re.split(r"[\s,]", expanded, maxsplit=1)[0]
        if error := address_error(address):
            problems.append(ImportProblem(name, line, f"PV {address!r}: {error}"))
        else:
            rows.append(RegistryRow(name, line, normalized(address), {}, {}))
    return rows


def _without_psi_header(text: str) -> str:
    """The request file with PSI snapshot's JSON metadata header (labels, filters), if it starts
    with one, blanked out: the header says nothing about PVs, and the lines keep their numbers."""
    if not text.lstrip().startswith("{"):
        return text
    start = len(text) - len(text.lstrip())
    try:
        end = start + parse_json_prefix(text[start:])
    except ValueError as error:
        raise ValueError(f"The JSON header (PSI snapshot's labels and filters) is not valid JSON: {error}") from None
    return "\n" * text.count("\n", 0, end) + text[end:]


def _include(
    name: str,
    include: str,
    macros: Mapping[str, str],
    loader: IncludeLoader | None,
    problems: list[ImportProblem],
    chain: tuple[str, ...],
) -> list[RegistryRow]:
    if loader is None:
        raise ValueError(f"Cannot include {include!r}: includes are not available here.")
    try:
        child, text = loader(include, name)
    except FileNotFoundError:
        raise ValueError(f"Cannot include {include!r}: file not found.") from None
    except OSError as error:
        raise ValueError(f"Cannot include {include!r}: {error.strerror}.") from None
    except TextError as error:
        raise ValueError(f"Cannot include {include!r}: line {error.line}: {error.message}") from None
    if child in chain:
        raise ValueError(f"Include loop: {' -> '.join((*chain, child))}.")
    return _parse_req(child, text, macros, loader, problems, (*chain, child))


def filesystem_include_loader(name: str, including_file: str) -> tuple[str, str]:
    """Read an included .req file relative to the directory of the file that includes it."""
    path = os.path.normpath(os.path.join(os.path.dirname(including_file), name))
    with open(path, "rb") as file:
        return path, decode_text(file.read())


def uploaded_include_loader(files: Mapping[str, bytes]) -> IncludeLoader:
    """A loader that finds includes by base name among uploaded files (uploads have no folders)."""
    by_base_name = {_base_name(upload): content for upload, content in files.items()}

    def load(name: str, including_file: str) -> tuple[str, str]:
        base = _base_name(name)
        if base not in by_base_name:
            raise FileNotFoundError(name)
        return base, decode_text(by_base_name[base])

    return load


def _base_name(name: str) -> str:
    return name.replace("\\", "/").rsplit("/", 1)[-1]


# ---------------------------------------------------------------------------------------------
# Comparing with the registry and applying


def _check_duplicates(rows: list[RegistryRow], problems: list[ImportProblem]) -> None:
    first: dict[str, RegistryRow] = {}
    for row in rows:
        earlier = first.setdefault(row.setpoint_address, row)
        if earlier is not row:
            where = f"line {earlier.line}" if earlier.file == row.file else f"{earlier.file}:{earlier.line}"
            problems.append(ImportProblem(row.file, row.line, f"Setpoint {row.setpoint_address!r} is also on {where}."))


class _Plan:
    """The changes that bring the registry in line with `rows`, found with bulk queries."""

    def __init__(self, rows: list[RegistryRow]):
        groups = sorted({group for row in rows for group in row.tags})
        self.existing = {
            pv.setpoint_address: pv
            for pv in PV.objects.filter(setpoint_address__in=in_array([row.setpoint_address for row in rows], "text"))
        }
        self.group_ids = dict(TagGroup.objects.filter(name__in=groups).values_list("name", "id"))
        self.tag_ids = {
            (group, tag): tag_id
            for tag_id, group, tag in Tag.objects.filter(group__name__in=groups).values_list(
                "id", "group__name", "name"
            )
        }
        current: dict[tuple[int, str], dict[str, int]] = defaultdict(dict)
        if self.existing and groups:
            links = PV.tags.through.objects.filter(
                pv_id__in=in_array([pv.id for pv in self.existing.values()], "bigint"),
                tag__group__name__in=groups,
            ).values_list("id", "pv_id", "tag__group__name", "tag__name")
            for link_id, pv_id, group, tag in links:
                current[pv_id, group][tag] = link_id

        self.new_rows: list[RegistryRow] = []
        self.changed_pvs: list[PV] = []
        self.changed_fields: set[str] = set()
        self.unchanged = 0
        self.new_links: list[tuple[str, str, str]] = []  # (setpoint address, group, tag)
        self.removed_link_ids: list[int] = []
        for row in rows:
            address = row.setpoint_address
            pv = self.existing.get(address)
            if pv is None:
                self.new_rows.append(row)
                self.new_links += [(address, group, tag) for group, tags in row.tags.items() for tag in tags]
                continue
            dirty = [name for name, value in row.fields.items() if getattr(pv, name) != value]
            for name in dirty:
                setattr(pv, name, row.fields[name])
            links_before = len(self.new_links) + len(self.removed_link_ids)
            for group, tags in row.tags.items():
                have = current.get((pv.id, group), {})
                self.removed_link_ids += [link_id for tag, link_id in have.items() if tag not in tags]
                self.new_links += [(address, group, tag) for tag in tags if tag not in have]
            if dirty or len(self.new_links) + len(self.removed_link_ids) > links_before:
                self.changed_pvs.append(pv)
                self.changed_fields.update(dirty)
            else:
                self.unchanged += 1
        self.new_groups = sorted(set(groups) - self.group_ids.keys())
        self.new_tags = sorted({(group, tag) for _, group, tag in self.new_links} - self.tag_ids.keys())

    def report(self) -> ImportReport:
        """Counts, new-tag labels (a new group by its bare name) and the addresses written."""
        labels = sorted(
            [(group, 0, group) for group in self.new_groups]
            + [(group, 1, f"{group}: {tag}") for group, tag in self.new_tags]
        )
        addresses = [row.setpoint_address for row in self.new_rows]
        addresses += [pv.setpoint_address for pv in self.changed_pvs]
        return ImportReport(
            new=len(self.new_rows),
            updated=len(self.changed_pvs),
            unchanged=self.unchanged,
            new_tags=[label for *_, label in labels],
            addresses=sorted(addresses),
        )

    @property
    def has_changes(self) -> bool:
        return bool(self.new_rows or self.changed_pvs or self.new_groups)

    def apply(self) -> None:
        """Write the plan; the caller holds the transaction."""
        for group in TagGroup.objects.bulk_create([TagGroup(name=name) for name in self.new_groups]):
            self.group_ids[group.name] = group.id
        new_tags = [Tag(group_id=self.group_ids[group], name=tag) for group, tag in self.new_tags]
        for (group, _), tag in zip(self.new_tags, Tag.objects.bulk_create(new_tags), strict=True):
            self.tag_ids[group, tag.name] = tag.id
        now = timezone.now()
        pv_ids = {address: pv.id for address, pv in self.existing.items()}
        pv_ids.update(self._insert_new_pvs(now))
        for pv in self.changed_pvs:
            pv.updated_at = now
        columns = [*sorted(self.changed_fields), "updated_at"]
        attnames = [PV._meta.get_field(name).attname for name in columns]
        update_rows(PV, columns, [(pv.pk, *(getattr(pv, name) for name in attnames)) for pv in self.changed_pvs])
        through = PV.tags.through
        if self.removed_link_ids:
            through.objects.filter(id__in=self.removed_link_ids).delete()
        links = ((pv_ids[address], self.tag_ids[group, tag]) for address, group, tag in self.new_links)
        copy_rows(through, ["pv_id", "tag_id"], links)

    def _insert_new_pvs(self, now) -> dict[str, int]:
        """COPY the new PVs in, every field the file has no column for at its model default."""
        rows = [{**row.fields, "setpoint_address": row.setpoint_address} for row in self.new_rows]
        ids = PV.objects.create_from_rows(rows, now=now)
        return {row["setpoint_address"]: pv_id for row, pv_id in zip(rows, ids, strict=True)}


def _parse(
    filename: str,
    content: bytes | str,
    macros: Mapping[str, str],
    include_loader: IncludeLoader | None,
    problems: list[ImportProblem],
) -> list[RegistryRow]:
    extension = os.path.splitext(filename)[1].lower()
    if extension not in (".csv", ".req"):
        problems.append(
            ImportProblem(
                filename,
                None,
                f"Unknown file type {extension or '(none)'!r}: use .csv (registry CSV) or .req "
                "(autosave request file).",
            )
        )
        return []
    try:
        text = decode_text(content)
    except TextError as error:
        problems.append(ImportProblem(filename, error.line, error.message))
        return []
    if extension == ".csv":
        rows = _parse_csv(filename, text, problems)
    else:
        rows = _parse_req(filename, text, macros, include_loader, problems, (filename,))
    _check_duplicates(rows, problems)
    return rows


def import_pvs(
    filename: str,
    content: bytes | str,
    *,
    dry_run: bool,
    macros: Mapping[str, str] | None = None,
    include_loader: IncludeLoader | None = None,
) -> ImportReport:
    """Check a registry file (.csv or .req, by `filename`) and, unless `dry_run`, apply it.

    Every problem is collected; with any problem nothing is written. Applying is one
    transaction. `include_loader` resolves .req `file` lines (none: includes are errors).
    """
    problems: list[ImportProblem] = []
    rows = _parse(filename, content, macros or {}, include_loader, problems)
    if problems:
        return ImportReport(errors=problems)
    if dry_run:
        return _Plan(rows).report()
    try:
        with transaction.atomic():
            # Planned inside the transaction so the comparison and the writes see one registry.
            plan = _Plan(rows)
            plan.apply()
    except IntegrityError as error:
        # Another import or an admin edit created the same PV or tag after we looked.
        reason = str(error).splitlines()[0]
        message = f"The registry changed during the import ({reason}); nothing was imported, try again."
        return ImportReport(errors=[ImportProblem(filename, None, message)])
    report = plan.report()
    report.applied = plan.has_changes
    return report
