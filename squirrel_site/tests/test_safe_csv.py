"""Spreadsheet-safe CSV cells: formulas neutralised on write, restored on the project's own read."""

import io

import pytest

from squirrel_site import safe_csv


@pytest.mark.parametrize(
    "cell, written",
    [
        ('=HYPERLINK("http://evil.example","x")', '\'=HYPERLINK("http://evil.example","x")'),
        ("=cmd|'/C calc'!A0", "'=cmd|'/C calc'!A0"),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tTAB", "'\tTAB"),
        ("\rCR", "'\rCR"),
        ("'=already", "''=already"),
        ("'tis", "''tis"),
    ],
)
def test_a_cell_a_spreadsheet_would_evaluate_gets_a_quote(cell, written):
    assert safe_csv.neutralise(cell) == written


@pytest.mark.parametrize("cell", ["", "LI20:MAG:BDES", "-1.5", "+3e-4", "-.5", "1e300", "a=b", "[-1, 2]", '"=x"'])
def test_plain_text_and_numbers_are_written_as_they_are(cell):
    assert safe_csv.neutralise(cell) == cell


@pytest.mark.parametrize("cell", ["=1+1", "-x", "'=x", "'", "''", "'tis", "-1.5", "@", "plain"])
def test_every_cell_round_trips_through_write_and_read(cell):
    stream = io.StringIO(newline="")
    safe_csv.writer(stream).writerow([cell, "next"])

    (row,) = list(safe_csv.reader(io.StringIO(stream.getvalue(), newline="")))

    assert row == [cell, "next"]


def test_a_hand_written_leading_quote_is_kept_on_read():
    (row,) = list(safe_csv.reader(io.StringIO("'tis,x\n")))

    assert row == ["'tis", "x"]


def test_none_is_written_as_an_empty_cell():
    stream = io.StringIO()
    safe_csv.writer(stream, lineterminator="\n").writerow([None, 1.5, "=x"])

    assert stream.getvalue() == ",1.5,'=x\n"
