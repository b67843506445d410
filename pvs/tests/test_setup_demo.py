import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command
from django.test import RequestFactory

from pvs import sim
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
