import os
import subprocess
import sys

import pytest
from django.conf import settings

from squirrel_site.epics_env import LOOPBACK_DEFAULTS


@pytest.mark.slow  # starts Squirrel's own processes
def test_the_ca_layer_defaults_to_loopback_even_without_django_settings():
    env = {k: v for k, v in os.environ.items() if not k.startswith("EPICS_")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    names = list(LOOPBACK_DEFAULTS)
    code = f"import os, json, pvs.epics_bulk; print(json.dumps({{k: os.environ.get(k) for k in {names!r}}}))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == __import__("json").dumps(LOOPBACK_DEFAULTS)


def test_an_operators_setting_wins(monkeypatch):
    from squirrel_site.epics_env import apply_loopback_defaults

    monkeypatch.setenv("EPICS_CA_ADDR_LIST", "10.0.1.255")
    apply_loopback_defaults()
    assert os.environ["EPICS_CA_ADDR_LIST"] == "10.0.1.255"
