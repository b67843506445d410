import math

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from pvs.models import PV


@pytest.mark.django_db
def test_full_clean_reports_field_errors():
    pv = PV(setpoint_address="BAD NAME", readback_address="OK:RB", abs_tolerance=-1)
    with pytest.raises(ValidationError) as excinfo:
        pv.full_clean()
    assert set(excinfo.value.message_dict) == {"setpoint_address", "abs_tolerance"}


@pytest.mark.django_db
def test_setpoint_address_is_unique():
    PV.objects.create(setpoint_address="SIM:A")
    with pytest.raises(IntegrityError):
        PV.objects.create(setpoint_address="SIM:A")


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["abs_tolerance", "rel_tolerance"])
@pytest.mark.parametrize("value", [-1.0, math.nan, math.inf])
def test_database_rejects_bad_tolerances_that_skip_validation(field, value):
    with pytest.raises(IntegrityError):
        PV.objects.create(setpoint_address="SIM:A", **{field: value})


@pytest.mark.django_db
def test_addresses_lists_the_channels_in_use():
    pv = PV(setpoint_address="SIM:SP", readback_address="SIM:RB")
    assert pv.addresses == ["SIM:SP", "SIM:RB"]


@pytest.mark.django_db
def test_writable_excludes_read_only_pvs():
    PV.objects.create(setpoint_address="SIM:RW")
    PV.objects.create(setpoint_address="SIM:RO", read_only=True)
    assert list(PV.objects.writable().values_list("setpoint_address", flat=True)) == ["SIM:RW"]
