"""Registry import: CSV and .req parsing, error reporting, update semantics, atomicity."""

import pytest

from pvs.importers import ImportProblem, filesystem_include_loader, import_pvs, uploaded_include_loader
from pvs.models import PV
from tags.models import Tag, TagGroup

HEADER = "Setpoint,Readback,Description,Area\n"


def csv_import(text: str, *, dry_run: bool = False, name: str = "registry.csv"):
    return import_pvs(name, text.encode(), dry_run=dry_run)


def error_texts(report) -> list[str]:
    return [str(problem) for problem in report.errors]


def tag_labels(pv: PV) -> list[str]:
    return sorted(str(tag) for tag in pv.tags.select_related("group"))


@pytest.fixture
def li20_magnet(db):
    """One PV, LI20:MAG:BDES, with a description and the tags Area: LI20 and System: Magnets."""
    pv = PV.objects.create(
        setpoint_address="LI20:MAG:BDES",
        readback_address="LI20:MAG:BACT",
        description="Old",
        abs_tolerance=0.5,
    )
    area = TagGroup.objects.create(name="Area")
    system = TagGroup.objects.create(name="System")
    pv.tags.add(Tag.objects.create(group=area, name="LI20"), Tag.objects.create(group=system, name="Magnets"))
    return pv


# --- CSV ------------------------------------------------------------------------------------


def test_csv_creates_pvs_with_fields_and_tags(db):
    report = csv_import(
        "Setpoint,Readback,Description,Device,Abs Tolerance,Rel Tolerance,Read Only,Restore Stage,"
        "Wait For Completion,Area\n"
        'LI20:MAG:BDES,LI20:MAG:BACT,Bend,MAG1,0.25,0.01,no,2,yes,"LI20,LI21"\n'
    )

    assert report.ok and report.applied
    assert (report.new, report.updated, report.unchanged) == (1, 0, 0)
    pv = PV.objects.get()
    assert (pv.setpoint_address, pv.readback_address, pv.description, pv.device) == (
        "LI20:MAG:BDES",
        "LI20:MAG:BACT",
        "Bend",
        "MAG1",
    )
    assert (pv.abs_tolerance, pv.rel_tolerance, pv.read_only, pv.restore_stage, pv.wait_for_completion) == (
        0.25,
        0.01,
        False,
        2,
        True,
    )
    assert tag_labels(pv) == ["Area: LI20", "Area: LI21"]


def test_csv_reports_new_groups_and_tags(db):
    report = csv_import(HEADER + "A:B,,,LI20\n", dry_run=True)

    assert report.new_tags == ["Area", "Area: LI20"]


def test_csv_known_columns_are_case_insensitive_and_in_any_order(db):
    report = csv_import("readback,DEVICE,setpoint\nA:RBV,DEV1,A:SET\n")

    assert report.ok
    pv = PV.objects.get()
    assert (pv.setpoint_address, pv.readback_address, pv.device) == ("A:SET", "A:RBV", "DEV1")


def test_csv_row_with_only_a_readback_is_a_read_only_pv_at_that_address(db):
    csv_import(HEADER + ",LI20:BPM:X,Position,\n")

    pv = PV.objects.get()
    assert (pv.setpoint_address, pv.readback_address, pv.read_only) == ("LI20:BPM:X", "", True)


def test_csv_row_with_only_a_readback_cannot_be_marked_writable(db):
    report = csv_import("Setpoint,Readback,Read Only\n,LI20:BPM:X,false\n")

    assert error_texts(report) == [
        "registry.csv:2: A row with only a Readback is read-only; Read Only cannot be false."
    ]


def test_csv_accepts_byte_order_mark_and_blank_rows(db):
    content = b"\xef\xbb\xbf" + (HEADER + "\n,,,\nA:B,,,\n").encode()

    report = import_pvs("registry.csv", content, dry_run=False)

    assert report.ok and report.new == 1


def test_csv_booleans_accept_yes_no_one_zero_in_any_case(db):
    csv_import("Setpoint,Readback,Read Only,Wait For Completion\nA:1,,YES,0\nA:2,,False,1\nA:3,,,\n")

    assert list(PV.objects.values_list("read_only", "wait_for_completion")) == [
        (True, False),
        (False, True),
        (False, False),
    ]


def test_csv_update_overwrites_only_columns_in_the_file(li20_magnet):
    report = csv_import("Setpoint,Readback,Description\nLI20:MAG:BDES,LI20:MAG:BACT,New\n")

    assert (report.new, report.updated, report.unchanged) == (0, 1, 0)
    li20_magnet.refresh_from_db()
    assert (li20_magnet.description, li20_magnet.abs_tolerance) == ("New", 0.5)


def test_csv_update_replaces_tags_of_groups_in_the_file_and_keeps_others(li20_magnet):
    csv_import(HEADER + "LI20:MAG:BDES,LI20:MAG:BACT,Old,LI21\n")

    assert tag_labels(li20_magnet) == ["Area: LI21", "System: Magnets"]


def test_csv_empty_tag_cell_removes_the_groups_tags(li20_magnet):
    csv_import(HEADER + "LI20:MAG:BDES,LI20:MAG:BACT,Old,\n")

    assert tag_labels(li20_magnet) == ["System: Magnets"]


def test_csv_update_sets_updated_at(li20_magnet):
    before = li20_magnet.updated_at

    csv_import("Setpoint,Readback,Description\nLI20:MAG:BDES,LI20:MAG:BACT,New\n")

    li20_magnet.refresh_from_db()
    assert li20_magnet.updated_at > before


def test_csv_identical_row_is_unchanged_and_nothing_is_applied(li20_magnet):
    report = csv_import(HEADER + "LI20:MAG:BDES,LI20:MAG:BACT,Old,LI20\n")

    assert (report.new, report.updated, report.unchanged, report.applied) == (0, 0, 1, False)


def test_csv_dry_run_writes_nothing(li20_magnet):
    report = csv_import(HEADER + "LI20:MAG:BDES,LI20:MAG:BACT,New,LI21\nNEW:PV,,,NewArea\n", dry_run=True)

    assert (report.new, report.updated, report.applied) == (1, 1, False)
    assert report.new_tags == ["Area: LI21", "Area: NewArea"]
    li20_magnet.refresh_from_db()
    assert li20_magnet.description == "Old"
    assert PV.objects.count() == 1
    assert not Tag.objects.filter(name__in=["LI21", "NewArea"]).exists()


def test_csv_row_line_is_where_a_multiline_row_starts(db):
    report = csv_import(HEADER + 'A:1,,"two\nlines",\nbad pv,,,\n')

    assert error_texts(report) == ["registry.csv:4: Setpoint 'bad pv': The address contains whitespace."]


# --- CSV errors: each reported with its line, and nothing is written ------------------------


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("A:1,,x\n", "Expected 4 columns as in the header, found 3."),
        ("A 1,,,\n", "Setpoint 'A 1': The address contains whitespace."),
        ('A:1,R"B,,\n', "Readback 'R\"B': The address contains a quote."),
        (",,desc,\n", "Setpoint and Readback are both empty; a PV needs at least one of them."),
    ],
)
def test_csv_row_errors_carry_the_line(db, row, message):
    report = csv_import(HEADER + "OK:1,,,\n" + row)

    assert error_texts(report) == [f"registry.csv:3: {message}"]
    assert not PV.objects.exists()


def test_csv_description_longer_than_the_model_allows_is_an_error(db):
    report = csv_import(HEADER + f"A:1,,{'d' * 1001},\n")

    assert [problem.line for problem in report.errors] == [2]
    assert report.errors[0].message.endswith("Longer than 1000 characters.")
    assert not PV.objects.exists()


def test_csv_trims_spaces_around_addresses_and_tags(db):
    csv_import(HEADER + ' A:1 ,,," LI20 , LI21 "\n')

    pv = PV.objects.get()
    assert (pv.setpoint_address, tag_labels(pv)) == ("A:1", ["Area: LI20", "Area: LI21"])


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("-1", "Abs Tolerance '-1': The tolerance may not be negative."),
        ("abc", "Abs Tolerance 'abc': Not a number."),
        ("nan", "Abs Tolerance 'nan': The tolerance must be a finite number."),
        ("inf", "Abs Tolerance 'inf': The tolerance must be a finite number."),
    ],
)
def test_csv_bad_tolerance_is_an_error(db, cell, message):
    report = csv_import(f"Setpoint,Readback,Abs Tolerance\nA:1,,{cell}\n")

    assert error_texts(report) == [f"registry.csv:2: {message}"]


def test_csv_bad_boolean_is_an_error(db):
    report = csv_import("Setpoint,Readback,Read Only\nA:1,,maybe\n")

    assert error_texts(report) == ["registry.csv:2: Read Only 'maybe': Not a boolean; use true/false, yes/no or 1/0."]


@pytest.mark.parametrize("cell", ["-1", "1.5", "x", "40000"])
def test_csv_bad_restore_stage_is_an_error(db, cell):
    report = csv_import(f"Setpoint,Readback,Restore Stage\nA:1,,{cell}\n")

    assert error_texts(report) == [
        f"registry.csv:2: Restore Stage {cell!r}: The restore stage must be a whole number from 0 to 32767."
    ]


def test_csv_invalid_tag_name_is_an_error(db):
    report = csv_import(HEADER + 'A:1,,,"LI20, bad\ttag"\n')

    assert error_texts(report) == [
        "registry.csv:2: Area tag 'bad\\ttag': Names may not contain ',', tabs, line breaks or control characters."
    ]


def test_csv_invalid_tag_group_header_is_an_error(db):
    report = csv_import('Setpoint,Readback,"Are,a"\nA:1,,x\n')

    assert error_texts(report)[0].startswith("registry.csv:1: Tag group 'Are,a': Names may not contain ','")


def test_csv_without_setpoint_and_readback_header_is_an_error(db):
    report = csv_import("PV,Description\nA:1,x\n")

    assert error_texts(report) == [
        "registry.csv:1: The header must have Setpoint and Readback columns "
        "(Setpoint,Readback,Description,<one column per tag group>)."
    ]


def test_csv_duplicate_column_is_an_error(db):
    report = csv_import("Setpoint,Readback,Device,device\nA:1,,x,y\n")

    assert error_texts(report) == ["registry.csv:1: Column 'device' appears more than once."]


def test_csv_duplicate_setpoint_names_both_lines(db):
    report = csv_import(HEADER + "A:1,,,\nA:2,,,\nA:1,,,\n")

    assert error_texts(report) == ["registry.csv:4: Setpoint 'A:1' is also on line 2."]
    assert not PV.objects.exists()


def test_csv_readback_only_row_duplicating_a_setpoint_is_an_error(db):
    report = csv_import(HEADER + "A:1,,,\n,A:1,,\n")

    assert error_texts(report) == ["registry.csv:3: Setpoint 'A:1' is also on line 2."]


def test_csv_reports_every_error_not_just_the_first(db):
    report = csv_import("Setpoint,Readback,Abs Tolerance\nA 1,,-1\nA:2,,x\nA:3,,1\n")

    assert [problem.line for problem in report.errors] == [2, 2, 3]


def test_csv_any_error_means_nothing_is_written_even_when_applying(li20_magnet):
    report = csv_import(HEADER + "LI20:MAG:BDES,LI20:MAG:BACT,New,LI21\nNEW:PV,,,X\nbad pv,,,\n")

    assert not report.ok and not report.applied
    li20_magnet.refresh_from_db()
    assert li20_magnet.description == "Old"
    assert PV.objects.count() == 1
    assert not TagGroup.objects.exclude(name__in=["Area", "System"]).exists()


def test_csv_unterminated_quote_is_an_error(db):
    report = csv_import(HEADER + 'A:1,,"open,\n')

    assert len(report.errors) == 1 and report.errors[0].line == 2


def test_empty_file_is_an_error(db):
    assert error_texts(csv_import("")) == ["registry.csv: The file is empty; it needs a header line."]


def test_file_that_is_not_utf8_is_an_error_with_its_line(db):
    report = import_pvs("registry.csv", HEADER.encode() + b"A:1,,caf\xe9,\n", dry_run=False)

    assert error_texts(report) == ["registry.csv:2: Not UTF-8 text (byte 0xe9); save the file as UTF-8."]


def test_unknown_file_type_is_one_error(db):
    report = import_pvs("registry.xlsx", b"whatever", dry_run=True)

    assert len(report.errors) == 1
    assert "Unknown file type '.xlsx'" in str(report.errors[0])


def test_problem_without_line_prints_file_only():
    assert str(ImportProblem("a.csv", None, "Empty.")) == "a.csv: Empty."
    assert str(ImportProblem("a.csv", 3, "Bad.")) == "a.csv:3: Bad."


# --- .req -----------------------------------------------------------------------------------


def req_import(text: str, *, macros=None, files=None, dry_run: bool = False, name: str = "top.req"):
    return import_pvs(
        name,
        text.encode(),
        dry_run=dry_run,
        macros=macros,
        include_loader=uploaded_include_loader(files or {}),
    )


def test_req_creates_one_pv_per_line_ignoring_comments_and_extra_tokens(db):
    report = req_import("# magnets\n\nLI20:MAG:BDES\n  LI20:MAG:BCTRL  extra words\n")

    assert report.ok and report.new == 2
    assert list(PV.objects.values_list("setpoint_address", "read_only", "abs_tolerance")) == [
        ("LI20:MAG:BCTRL", False, 0.0),
        ("LI20:MAG:BDES", False, 0.0),
    ]


def test_req_leaves_existing_pvs_unchanged(li20_magnet):
    report = req_import("LI20:MAG:BDES\n")

    assert (report.new, report.updated, report.unchanged) == (0, 0, 1)
    li20_magnet.refresh_from_db()
    assert (li20_magnet.description, tag_labels(li20_magnet)) == ("Old", ["Area: LI20", "System: Magnets"])


def test_req_substitutes_macros_in_all_three_forms(db):
    req_import("$(P)MAG:$(DEV)\n${P}BPM:X\n$(P)$(AREA=LI20):Y\n", macros={"P": "SYS:", "DEV": "Q1"})

    assert sorted(PV.objects.values_list("setpoint_address", flat=True)) == ["SYS:BPM:X", "SYS:LI20:Y", "SYS:MAG:Q1"]


def test_req_undefined_macro_is_an_error_with_the_line(db):
    report = req_import("A:1\n$(P)B\n")

    assert error_texts(report) == ["top.req:2: Undefined macro 'P' (no value given and no default)."]
    assert not PV.objects.exists()


def test_req_invalid_address_is_an_error(db):
    report = req_import("A:1\nA:2.val\n")

    assert error_texts(report) == [
        "top.req:2: PV 'A:2.val': The field name must be upper-case letters and digits, like VAL or EGU."
    ]


def test_req_includes_with_macro_sets(db):
    files = {"motor.req": b"$(P)$(M).VAL\n$(P)$(M).VELO\n"}

    report = req_import(
        'file motor.req P=$(P),M=m1\nfile "motor.req" M=m2, P=OTHER:\n', macros={"P": "IOC:"}, files=files
    )

    assert report.ok
    assert sorted(PV.objects.values_list("setpoint_address", flat=True)) == [
        "IOC:m1.VAL",
        "IOC:m1.VELO",
        "OTHER:m2.VAL",
        "OTHER:m2.VELO",
    ]


def test_req_include_inherits_the_including_files_macros(db):
    files = {"inner.req": b"$(P)$(Q)\n"}

    req_import("file inner.req Q=B\n", macros={"P": "A:"}, files=files)

    assert PV.objects.get().setpoint_address == "A:B"


def test_req_include_name_may_contain_macros(db):
    req_import("file $(KIND).req\n", macros={"KIND": "bpm"}, files={"bpm.req": b"BPM:1:X\n"})

    assert PV.objects.get().setpoint_address == "BPM:1:X"


def test_req_errors_inside_includes_name_the_included_file(db):
    report = req_import("A:1\nfile inner.req\n", files={"inner.req": b"# x\nA:2`\n"})

    assert error_texts(report) == ["inner.req:2: PV 'A:2`': The address contains a quote."]


def test_req_missing_include_is_an_error_at_that_line(db):
    report = req_import("A:1\nfile missing.req\n")

    assert error_texts(report) == ["top.req:2: Cannot include 'missing.req': file not found."]


def test_req_include_loop_is_an_error_naming_the_chain(db):
    files = {"a.req": b"A:1\nfile b.req\n", "b.req": b"B:1\nfile a.req\n"}

    report = req_import("file a.req\n", files=files)

    assert error_texts(report) == ["b.req:2: Include loop: top.req -> a.req -> b.req -> a.req."]
    assert not PV.objects.exists()


def test_req_duplicate_across_includes_names_both_places(db):
    report = req_import("A:1\nfile inner.req\n", files={"inner.req": b"A:1\n"})

    assert error_texts(report) == ["inner.req:1: Setpoint 'A:1' is also on top.req:1."]


def test_req_without_include_loader_reports_includes_as_errors(db):
    report = import_pvs("top.req", b"file inner.req\n", dry_run=True)

    assert error_texts(report) == ["top.req:1: Cannot include 'inner.req': includes are not available here."]


def test_filesystem_loader_reads_includes_beside_the_including_file(db, tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "inner.req").write_text("$(P)X\n")
    top = tmp_path / "top.req"
    top.write_text("file sub/inner.req P=Z:\n")

    report = import_pvs(str(top), top.read_bytes(), dry_run=False, include_loader=filesystem_include_loader)

    assert report.ok
    assert PV.objects.get().setpoint_address == "Z:X"


def test_filesystem_loader_reports_an_unreadable_include(db, tmp_path):
    (tmp_path / "sub").mkdir()
    top = tmp_path / "top.req"
    top.write_text("file sub\n")

    report = import_pvs(str(top), top.read_bytes(), dry_run=True, include_loader=filesystem_include_loader)

    assert error_texts(report) == [f"{top}:1: Cannot include 'sub': Is a directory."]


def test_pv_created_by_someone_else_meanwhile_is_reported_and_nothing_written(db, monkeypatch):
    PV.objects.create(setpoint_address="A:2")
    # The registry as it was before the other writer committed: no existing PVs or links.
    monkeypatch.setattr("pvs.importers.in_array", lambda values, db_type: [])

    report = csv_import(HEADER + "A:1,,,LI20\nA:2,,,\n")

    assert len(report.errors) == 1
    assert str(report.errors[0]).startswith("registry.csv: The registry changed during the import")
    assert list(PV.objects.values_list("setpoint_address", flat=True)) == ["A:2"]
    assert not TagGroup.objects.exists()


def test_req_file_line_without_a_name_is_an_error(db):
    report = req_import("file\n")

    assert error_texts(report) == ["top.req:1: 'file' needs the name of the file to include."]


def test_req_bad_macro_list_on_a_file_line_is_an_error(db):
    report = req_import("file inner.req P\n", files={"inner.req": b"A:1\n"})

    assert error_texts(report) == ["top.req:1: Expected NAME=VALUE in the macro list, found 'P'."]
