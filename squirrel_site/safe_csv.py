"""Spreadsheet-safe CSV: every CSV the project writes goes through `writer`, every CSV it reads
back through `reader`, so a cell a spreadsheet would evaluate is never written as a formula and the
project's own exports still re-import unchanged.

OWASP's rule (CSV injection): a cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return
is written with a `'` in front, which spreadsheets read as "this is text". Plain numbers (`-1.5`,
`+3e-4`) are left alone: no spreadsheet evaluates them and they stay numbers. A cell that already
starts with `'` gets one more, so that reading strips exactly one and every value round-trips:
`'=x` is written `''=x` and read back as `'=x`.
"""

import csv
import re

# Python's csv refuses cells over 128 KiB unless told otherwise, and an exported waveform of 10,000
# points is larger. A cell is never larger than its file, which the upload limit bounds.
csv.field_size_limit(2**31 - 1)

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def neutralise(cell: str) -> str:
    """`cell` as it is safe to write: a `'` in front of anything a spreadsheet would evaluate."""
    if not cell or (cell[0] not in FORMULA_STARTS and cell[0] != QUOTE):
        return cell
    if cell[0] != QUOTE and _NUMBER.fullmatch(cell):
        return cell
    return QUOTE + cell


def restore(cell: str) -> str:
    """The value `neutralise` wrote `cell` for (a hand-written cell such as `'tis` is kept)."""
    if len(cell) > 1 and cell[0] == QUOTE and (cell[1] in FORMULA_STARTS or cell[1] == QUOTE):
        return cell[1:]
    return cell


class _Writer:
    """csv.writer's writerow/writerows, each cell neutralised."""

    def __init__(self, stream, **options):
        self._writer = csv.writer(stream, **options)

    def writerow(self, row):
        return self._writer.writerow(_safe(row))

    def writerows(self, rows):
        self._writer.writerows(map(_safe, rows))


_RISKY = frozenset((*FORMULA_STARTS, QUOTE))


def _safe(row) -> list[str]:
    """A row's cells neutralised; text that cannot need it (most of an export) is passed as is."""
    return [cell if type(cell) is str and cell[:1] not in _RISKY else neutralise(_text(cell)) for cell in row]


def _text(cell) -> str:
    return "" if cell is None else str(cell)


def writer(stream, **options) -> _Writer:
    """A csv.writer (same options) whose cells are written spreadsheet-safe."""
    return _Writer(stream, **options)


def reader(stream, **options):
    """A csv.reader (same options, same line_num) whose cells are read back with `restore`."""
    return _Reader(csv.reader(stream, **options))


class _Reader:
    def __init__(self, inner):
        self._inner = inner

    def __iter__(self):
        return self

    def __next__(self) -> list[str]:
        return [restore(cell) for cell in next(self._inner)]

    @property
    def line_num(self) -> int:
        return self._inner.line_num
