import pytest

from pvs.models import PV
from snapshots.models import Snapshot, SnapshotMode, SnapshotValue, ValueType


@pytest.mark.django_db
def test_deleting_a_pv_keeps_its_saved_values_without_the_reference(admin_user):
    pv = PV.objects.create(setpoint_address="SIM:GONE")
    snapshot = Snapshot.objects.create(title="t", created_by=admin_user, mode=SnapshotMode.CACHE)
    value = SnapshotValue.objects.create(
        snapshot=snapshot,
        pv=pv,
        pv_name=pv.setpoint_address,
        value_type=ValueType.FLOAT,
        setpoint_num=1.5,
        source="cache",
    )
    pv.delete()
    value.refresh_from_db()
    assert (value.pv_id, value.pv_name, value.setpoint_value) == (None, "SIM:GONE", 1.5)


@pytest.mark.django_db
def test_deleting_a_snapshot_deletes_its_values(admin_user):
    # The reference has no database constraint (speed): Django's cascade is what removes them.
    snapshot = Snapshot.objects.create(title="t", created_by=admin_user, mode=SnapshotMode.CACHE)
    SnapshotValue.objects.create(
        snapshot=snapshot, pv_name="SIM:A", value_type=ValueType.FLOAT, setpoint_num=1.0, source="cache"
    )
    snapshot.delete()
    assert not SnapshotValue.objects.exists()


@pytest.mark.parametrize(
    ("value_type", "columns", "expected"),
    [
        (ValueType.ENUM, {"setpoint_num": 2.0, "setpoint_str": "On"}, 2),
        (ValueType.INT_ARRAY, {"setpoint_array": [1.0, 2.0]}, [1, 2]),
        (ValueType.STRING, {"setpoint_str": "hello"}, "hello"),
        (ValueType.NONE, {}, None),
    ],
)
def test_setpoint_value_is_typed(value_type, columns, expected):
    assert SnapshotValue(value_type=value_type, **columns).setpoint_value == expected
