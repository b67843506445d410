"""Registry export: the CSV layout, tag cells, exact floats, and the round trip through import."""

import csv
import io

import pytest

from pvs.exporters import export_pvs_csv
from pvs.importers import import_pvs
from pvs.models import PV
from tags.models import Tag, TagGroup

HEADER = [
    "Setpoint",
    "Readback",
    "Description",
    "Config",
    "Device",
    "Abs Tolerance",
    "Rel Tolerance",
    "Read Only",
    "Restore Stage",
    "Wait For Completion",
]


@pytest.fixture
def full_magnet(db):
    """Two PVs: one with every field set and tags in two groups (returned), one bare; a third empty group."""
    area = TagGroup.objects.create(name="Area")
    system = TagGroup.objects.create(name="System")
    TagGroup.objects.create(name="Empty")
    magnet = PV.objects.create(
        setpoint_address="LI20:MAG:BDES",
        readback_address="LI20:MAG:BACT",
        config_address="LI20:MAG:CFG",
        device="MAG1",
        description='Bend, "main"\nsecond line',
        abs_tolerance=0.1 + 0.2,
        rel_tolerance=1e-12,
        read_only=True,
        restore_stage=3,
        wait_for_completion=True,
    )
    magnet.tags.add(
        Tag.objects.create(group=area, name="LI21"),
        Tag.objects.create(group=area, name="LI20"),
        Tag.objects.create(group=system, name="Magnets"),
    )
    PV.objects.create(setpoint_address="AA:FIRST")
    return magnet


def export(queryset=None) -> str:
    stream = io.StringIO()
    export_pvs_csv(PV.objects.all() if queryset is None else queryset, stream)
    return stream.getvalue()


def test_export_writes_header_with_every_tag_group_sorted(full_magnet):
    header = next(csv.reader(io.StringIO(export())))

    assert header == [*HEADER, "Area", "Empty", "System"]


def test_export_writes_one_row_per_pv_ordered_by_setpoint(full_magnet):
    rows = list(csv.reader(io.StringIO(export())))[1:]

    assert [row[0] for row in rows] == ["AA:FIRST", "LI20:MAG:BDES"]


def test_export_writes_fields_and_joins_a_groups_tags(full_magnet):
    row = list(csv.reader(io.StringIO(export())))[2]

    assert row == [
        "LI20:MAG:BDES",
        "LI20:MAG:BACT",
        'Bend, "main"\nsecond line',
        "LI20:MAG:CFG",
        "MAG1",
        "0.30000000000000004",
        "1e-12",
        "true",
        "3",
        "true",
        "LI20,LI21",
        "",
        "Magnets",
    ]


def test_export_returns_rows_written(full_magnet):
    assert export_pvs_csv(PV.objects.filter(device="MAG1"), io.StringIO()) == 1


def test_export_of_a_subset_has_only_its_rows(full_magnet):
    rows = list(csv.reader(io.StringIO(export(PV.objects.filter(device="MAG1")))))

    assert [row[0] for row in rows[1:]] == ["LI20:MAG:BDES"]


def test_export_runs_three_queries_whatever_the_size(full_magnet, django_assert_num_queries):
    PV.objects.bulk_create(PV(setpoint_address=f"X:{i}") for i in range(50))

    with django_assert_num_queries(3):
        export()


def test_reimporting_an_export_changes_nothing(full_magnet):
    before = list(PV.objects.values())

    report = import_pvs("export.csv", export().encode(), dry_run=False)

    assert (report.new, report.updated, report.unchanged, report.new_tags) == (0, 0, 2, [])
    assert list(PV.objects.values()) == before


def test_export_imports_into_an_empty_registry_as_the_same_pvs(full_magnet):
    text = export()
    fields = [
        "setpoint_address",
        "readback_address",
        "config_address",
        "device",
        "description",
        "abs_tolerance",
        "rel_tolerance",
        "read_only",
        "restore_stage",
        "wait_for_completion",
    ]
    before = list(PV.objects.values(*fields))
    PV.objects.all().delete()
    Tag.objects.all().delete()

    import_pvs("export.csv", text.encode(), dry_run=False)

    assert list(PV.objects.values(*fields)) == before
    assert sorted(str(tag) for tag in PV.objects.get(device="MAG1").tags.all()) == [
        "Area: LI20",
        "Area: LI21",
        "System: Magnets",
    ]


def test_a_formula_in_a_description_is_exported_as_text_and_reimported_unchanged(full_magnet):
    formula = '=HYPERLINK("http://evil.example","x")'
    PV.objects.filter(pk=full_magnet.pk).update(description=formula, device="@dev")

    row = list(csv.reader(io.StringIO(export(PV.objects.filter(pk=full_magnet.pk)))))[1]
    report = import_pvs("reg.csv", export(), dry_run=False)

    assert (row[2], row[4]) == ("'" + formula, "'@dev")
    assert (report.new, report.updated, report.unchanged) == (0, 0, 2)
