"""The import_pvs and export_pvs management commands: output and exit status."""

import io

import pytest
from django.core.management import CommandError, call_command

from pvs.models import PV
from squirrel_site.models import AuditEntry
from tags.models import Tag, TagGroup


def run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def good_csv(tmp_path):
    path = tmp_path / "registry.csv"
    path.write_text("Setpoint,Readback,Area\nA:1,A:1:RBV,LI20\nA:2,,\n")
    return path


def test_import_prints_counts_and_new_tags(db, good_csv):
    out, _ = run("import_pvs", str(good_csv))

    assert out.splitlines() == ["2 new, 0 updated, 0 unchanged PVs.", "New tags: Area, Area: LI20"]
    assert PV.objects.count() == 2


def test_import_is_recorded_as_a_command_without_an_actor(db, good_csv):
    run("import_pvs", str(good_csv))

    entry = AuditEntry.objects.get()
    assert (entry.action, entry.via, entry.actor, entry.details["new"]) == ("pvs.imported", "command", None, 2)


def test_import_dry_run_says_so_and_writes_nothing(db, good_csv):
    out, _ = run("import_pvs", str(good_csv), "--dry-run")

    assert out.splitlines()[-1] == "Dry run: nothing was written."
    assert not PV.objects.exists() and not TagGroup.objects.exists()


def test_import_of_unchanged_file_says_nothing_to_change(db, good_csv):
    run("import_pvs", str(good_csv))

    out, _ = run("import_pvs", str(good_csv))

    assert out.splitlines() == ["0 new, 0 updated, 2 unchanged PVs.", "Nothing to change."]


def test_import_with_errors_prints_each_and_fails(db, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("Setpoint,Readback,Abs Tolerance\nA 1,,0\nA:2,,-1\n")
    err = io.StringIO()

    with pytest.raises(CommandError, match=r"^2 errors; nothing imported$"):
        call_command("import_pvs", str(path), stdout=io.StringIO(), stderr=err)

    assert err.getvalue().splitlines() == [
        f"{path}:2: Setpoint 'A 1': The address contains whitespace.",
        f"{path}:3: Abs Tolerance '-1': The tolerance may not be negative.",
    ]
    assert not PV.objects.exists()


def test_import_req_with_macros_and_includes_from_disk(db, tmp_path):
    (tmp_path / "motor.req").write_text("$(P)$(M).VAL\n")
    top = tmp_path / "top.req"
    top.write_text("file motor.req M=m1\nfile motor.req M=m2\n")

    run("import_pvs", str(top), "--macro", "P=IOC:")

    assert sorted(PV.objects.values_list("setpoint_address", flat=True)) == ["IOC:m1.VAL", "IOC:m2.VAL"]


def test_import_rejects_malformed_macro_option(db, good_csv):
    with pytest.raises(CommandError, match="NAME=VALUE"):
        run("import_pvs", str(good_csv), "--macro", "no-equals")


def test_import_of_missing_file_fails(db, tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        run("import_pvs", str(tmp_path / "missing.csv"))


@pytest.fixture
def tagged(db):
    area = TagGroup.objects.create(name="Area")
    li20, li21 = Tag.objects.create(group=area, name="LI20"), Tag.objects.create(group=area, name="LI21")
    PV.objects.create(setpoint_address="A:1").tags.add(li20)
    PV.objects.create(setpoint_address="A:2").tags.add(li20, li21)
    PV.objects.create(setpoint_address="A:3")


def test_export_writes_csv_to_stdout(tagged):
    out, err = run("export_pvs")

    assert [line.split(",")[0] for line in out.splitlines()] == ["Setpoint", "A:1", "A:2", "A:3"]
    assert err == "Exported 3 PVs.\n"


def test_export_with_tags_keeps_pvs_carrying_all_of_them(tagged):
    out, _ = run("export_pvs", "--tag", "Area:LI20", "--tag", "Area: LI21")

    assert [line.split(",")[0] for line in out.splitlines()[1:]] == ["A:2"]


def test_export_with_unknown_tag_fails(tagged):
    with pytest.raises(CommandError, match="No tag 'LI99' in tag group 'Area'"):
        run("export_pvs", "--tag", "Area:LI99")


def test_export_to_file_round_trips_through_import(tagged, tmp_path):
    path = tmp_path / "out.csv"
    run("export_pvs", str(path))

    out, _ = run("import_pvs", str(path))

    assert out.splitlines() == ["0 new, 0 updated, 3 unchanged PVs.", "Nothing to change."]
