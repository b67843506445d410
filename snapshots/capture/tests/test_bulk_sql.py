"""squirrel_site.bulk_sql against real PostgreSQL, on the widest table (SnapshotValue)."""

import math
from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model

from snapshots.models import Snapshot, SnapshotValue
from squirrel_site.bulk_sql import copy_rows, in_array, next_ids, number_array, update_rows

REQUIRED = ["snapshot_id", "pv_name", "readback_name", "value_type", "units", "source", "connected", "reason"]
T0 = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


@pytest.fixture
def snapshot(db):
    user = get_user_model().objects.create_user("bulk")
    return Snapshot.objects.create(title="bulk", created_by=user, mode="direct")


def test_number_array_spells_special_values_as_postgresql_does():
    assert number_array([1.5, None, math.nan, math.inf, -math.inf, 3]) == "{1.5,NULL,NaN,Infinity,-Infinity,3}"


@pytest.mark.parametrize("binary", [False, True])
def test_copy_rows_writes_every_type_round_trip(snapshot, binary):
    columns = [*REQUIRED, "setpoint_num", "setpoint_array", "timestamp", "enum_labels"]
    rows = [
        (snapshot.pk, "A", "", "float", "", "direct", True, "", -0.5, None, T0, None),
        (snapshot.pk, "B", "", "float_array", "", "cache", True, "", None, [1.0, math.inf, -0.0], T0, None),
        (snapshot.pk, "C", "", "enum", "", "cache", True, "", 2.0, None, None, ["Off", "On", "Élan"]),
    ]
    copy_rows(SnapshotValue, columns, rows, binary=binary)
    got = list(SnapshotValue.objects.order_by("pv_name").values_list(*[c.removesuffix("_id") for c in columns]))
    assert got == [tuple(row) for row in rows]


def test_update_rows_sets_columns_per_row_and_constants_on_all(snapshot):
    copy_rows(SnapshotValue, REQUIRED, [(snapshot.pk, name, "", "float", "", "direct", True, "") for name in "ABC"])
    ids = dict(SnapshotValue.objects.values_list("pv_name", "id"))
    update_rows(
        SnapshotValue,
        ["setpoint_num", "setpoint_array", "reason"],
        [(ids["A"], math.nan, [math.nan, -math.inf], 'it\'s "quoted", {braced}'), (ids["B"], None, None, "")],
        constants={"timestamp": T0, "source": "cache"},
    )
    rows = {v.pv_name: v for v in SnapshotValue.objects.all()}
    assert math.isnan(rows["A"].setpoint_num) and rows["A"].setpoint_array[1] == -math.inf
    assert math.isnan(rows["A"].setpoint_array[0])
    assert rows["A"].reason == 'it\'s "quoted", {braced}'
    assert (rows["B"].setpoint_num, rows["B"].setpoint_array, rows["B"].reason) == (None, None, "")
    assert [(rows[n].timestamp, rows[n].source) for n in "AB"] == [(T0, "cache"), (T0, "cache")]
    assert (rows["C"].timestamp, rows["C"].source) == (None, "direct")  # not in rows: untouched


def test_update_rows_refuses_arrays_of_text(snapshot):
    with pytest.raises(ValueError, match="enum_labels"):
        update_rows(SnapshotValue, ["enum_labels"], [(1, ["a"])])


def test_in_array_and_next_ids(snapshot):
    ids = next_ids(Snapshot, 3)
    assert len(ids) == 3 and ids == sorted(ids) and snapshot.pk < ids[0]
    assert list(Snapshot.objects.filter(pk__in=in_array([snapshot.pk, *ids], "bigint"))) == [snapshot]
    assert list(Snapshot.objects.filter(title__in=in_array(["bulk", "x'y"], "text"))) == [snapshot]
