import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command
from django.test import RequestFactory

from pvs import sim, sim_pva
from pvs.management.commands.setup_demo import DEMO_PASSWORD, DEMO_USERNAME
from pvs.models import PV, PVSet
from pvs.selections import pv_set_pvs


@pytest.mark.django_db
def test_setup_demo_registers_the_simulated_pvs_and_the_demo_user(capsys):
    call_command("setup_demo", "--pvs", "40")
    served = {pv.setpoint for pv in sim.generate(40).pvs}
    assert set(PV.objects.values_list("setpoint_address", flat=True)) == served
    # As the login page asks: login throttling (django-axes) needs the request.
    login = RequestFactory().post("/accounts/login/")
    assert authenticate(login, username=DEMO_USERNAME, password=DEMO_PASSWORD).is_superuser
    assert "Demo login" in capsys.readouterr().out


@pytest.mark.django_db
def test_setup_demo_again_changes_nothing(capsys):
    call_command("setup_demo", "--pvs", "40")
    call_command("setup_demo", "--pvs", "40")
    assert "0 new, 0 updated, 40 unchanged" in capsys.readouterr().out


@pytest.mark.django_db
def test_setup_demo_with_too_few_pvs_fails_with_one_line():
    with pytest.raises(CommandError):
        call_command("setup_demo", "--pvs", "2")
    assert not PV.objects.exists()


@pytest.mark.django_db
def test_setup_demo_with_alarms_registers_the_pvs_in_alarm_too(capsys):
    call_command("setup_demo", "--pvs", "40", "--alarms")
    registered = set(PV.objects.values_list("setpoint_address", flat=True))
    assert registered == {pv.setpoint for pv in sim.generate(40, alarms=True).pvs}
    assert len(registered) == 40 + len(sim.ALARM_PVS)


@pytest.mark.django_db
def test_setup_demo_saves_pv_sets_once_and_keeps_their_edits(capsys):
    call_command("setup_demo", "--pvs", "200")
    magnets = PVSet.objects.get(name="Magnets")
    assert pv_set_pvs(magnets).exists() and pv_set_pvs(PVSet.objects.get(name="LINAC RF")).exists()
    PVSet.objects.filter(pk=magnets.pk).update(description="Edited")
    call_command("setup_demo", "--pvs", "200")
    assert PVSet.objects.count() == 2 and PVSet.objects.get(name="Magnets").description == "Edited"
    assert "Demo PV sets: 0 new." in capsys.readouterr().out


@pytest.mark.django_db
def test_setup_demo_registers_the_pvaccess_pvs_beside_the_channel_access_ones(capsys):
    call_command("setup_demo", "--pvs", "40", "--pva-pvs", "30")
    served = {pv.setpoint for pv in sim.generate(40).pvs} | {f"pva://{pv.name}" for pv in sim_pva.generate(30)}
    assert set(PV.objects.values_list("setpoint_address", flat=True)) == served
    assert {pv.type for pv in sim_pva.generate(30)} == set(sim_pva.TYPES)
    table = PV.objects.get(setpoint_address=f"pva://{next(p.name for p in sim_pva.generate(30) if p.type == 'table')}")
    assert table.read_only and "NTTable" in table.description
    assert PV.objects.filter(setpoint_address__startswith="pva://", tags__name="pvAccess").count() == 30


@pytest.mark.django_db
def test_setup_demo_with_too_few_pvaccess_pvs_fails_with_one_line():
    with pytest.raises(CommandError, match="at least"):
        call_command("setup_demo", "--pvs", "40", "--pva-pvs", "3")
    assert not PV.objects.exists()
