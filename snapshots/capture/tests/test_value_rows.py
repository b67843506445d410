"""The values page's rows (snapshots.capture.api.value_rows) say exactly what SnapshotValueSerializer says."""

from datetime import UTC, datetime

import pytest
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from pvs.models import PV
from snapshots.capture.api.serializers import SnapshotValueSerializer
from snapshots.capture.api.value_rows import api_rows
from snapshots.models import Snapshot, SnapshotValue, ValueSource, ValueType

pytestmark = pytest.mark.django_db

WITH_MICROSECONDS = datetime(2026, 1, 15, 12, 30, 5, 123400, tzinfo=UTC)
WHOLE_SECOND = datetime(2026, 7, 1, 23, 59, 59, tzinfo=UTC)
NAN, INF = float("nan"), float("inf")


@pytest.fixture
def values(admin_user):
    """A snapshot holding every kind of value, alarms, odd floats and text, timestamps with and
    without a fraction, a readback, a PV no longer in the registry, a disconnected PV."""
    pv = PV.objects.create(setpoint_address="T:FLOAT_SP", readback_address="T:FLOAT_RB")
    snapshot = Snapshot.objects.create(title="All kinds", created_by=admin_user, mode="direct", pv_count=10)
    common = dict(
        snapshot=snapshot, source=ValueSource.DIRECT, status=0, severity=0, timestamp=WITH_MICROSECONDS, age=0.25
    )
    SnapshotValue.objects.bulk_create(
        [
            SnapshotValue(
                **common,
                pv=pv,
                pv_name="T:FLOAT_SP",
                readback_name="T:FLOAT_RB",
                value_type=ValueType.FLOAT,
                setpoint_num=1.5,
                readback_num=1.4999999999999998,
                readback_status=7,
                readback_severity=1,
                readback_timestamp=WHOLE_SECOND,
                units="mA",
                precision=3,
            ),
            SnapshotValue(**common, pv_name="T:WHOLE", value_type=ValueType.FLOAT, setpoint_num=100.0),
            SnapshotValue(**common, pv_name="T:NAN", value_type=ValueType.FLOAT, setpoint_num=NAN, readback_num=-INF),
            SnapshotValue(**common, pv_name="T:INT", value_type=ValueType.INT, setpoint_num=-42.0, readback_num=7.0),
            SnapshotValue(
                **common,
                pv_name="T:ENUM",
                value_type=ValueType.ENUM,
                setpoint_num=1.0,
                setpoint_str="On",
                enum_labels=["Off", "On", "Fault"],
            ),
            SnapshotValue(**common, pv_name="T:TEXT", value_type=ValueType.STRING, setpoint_str='Open "ü" \\ \n\u2028'),
            SnapshotValue(
                **common,
                pv_name="T:WAVE",
                value_type=ValueType.FLOAT_ARRAY,
                setpoint_array=[0.5, NAN, INF, 1e300],
                readback_array=[0.5, 1e-7],
            ),
            SnapshotValue(
                **common, pv_name="T:COUNTS", value_type=ValueType.INT_ARRAY, setpoint_array=[1.0, -2.0, 3.0]
            ),
            SnapshotValue(
                snapshot=snapshot,
                pv_name="T:GONE",
                value_type=ValueType.NONE,
                source=ValueSource.NONE,
                connected=False,
                reason="disconnected",
            ),
            SnapshotValue(
                **{**common, "timestamp": None, "age": None, "status": 17, "severity": 3},
                pv_name="T:NEVER",
                value_type=ValueType.INT,
                setpoint_num=0.0,
            ),
        ]
    )
    return SnapshotValue.objects.filter(snapshot=snapshot).order_by("id")


@pytest.mark.parametrize("zone", ["UTC", "Europe/London", "America/St_Johns", "Asia/Kolkata", "Australia/Sydney"])
def test_rows_equal_the_serializer_in_every_time_zone(values, zone):
    with timezone.override(zone):
        expected = SnapshotValueSerializer(values, many=True).data
        rows = list(api_rows(values))

    assert JSONRenderer().render(rows) == JSONRenderer().render(expected)


def test_rows_keep_the_serializers_key_order(values):
    (row,) = api_rows(values[:1])

    assert list(row) == list(SnapshotValueSerializer(values[0]).data)
