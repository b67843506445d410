"""The import contracts (pyproject.toml, `lint-imports` in .ci/lint) hold every module of
squirrel_site, and each of them fails on an import it forbids."""

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from django.conf import settings

BASE = Path(settings.BASE_DIR)
APPS = ("pvs", "tags", "snapshots", "jobs", "monitor")
# Neither library nor wiring: the tests, the tests' support, and the package's own files.
UNBOUND = {"squirrel_site", "squirrel_site.tests", "squirrel_site.testing", "squirrel_site.migrations"}

# One import each contract forbids: (file, relative to a copy of the tree, line appended to it).
VIOLATIONS = {
    "apps-layers": ("tags/models.py", "import pvs.models"),
    "snapshots-on-top": ("monitor/live.py", "import snapshots.models"),
    "jobs-alone": ("jobs/registry.py", "import monitor.live"),
    "site-library": ("squirrel_site/bulk_sql.py", "import squirrel_site.urls"),
    "site-wiring": ("pvs/services.py", "from squirrel_site.celery import app"),
    "snapshots-packages": ("snapshots/comparison/rules.py", "import snapshots.restore.models"),
}


def contracts() -> dict[str, dict]:
    config = tomllib.loads((BASE / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {contract["id"]: contract for contract in config["contracts"]}


def site_modules() -> set[str]:
    """squirrel_site's top-level modules and packages."""
    names = {path.stem for path in (BASE / "squirrel_site").glob("*.py")}
    names |= {path.parent.name for path in (BASE / "squirrel_site").glob("*/__init__.py")}
    return {f"squirrel_site.{name}" for name in names} - {"squirrel_site.__init__"}


def test_every_module_of_squirrel_site_is_library_or_wiring():
    library = set(contracts()["site-library"]["source_modules"])
    wiring = set(contracts()["site-wiring"]["forbidden_modules"])
    assert not library & wiring
    unclassified = site_modules() - library - wiring - UNBOUND
    assert not unclassified, f"name these in pyproject.toml's site-library or site-wiring contract: {unclassified}"
    assert wiring <= set(contracts()["site-library"]["forbidden_modules"]), "the library may import no wiring"
    assert (library | wiring) <= site_modules(), "a contract names a module that is gone"


@pytest.mark.slow  # lint-imports twice over a copy of the tree
def test_each_contract_fails_on_an_import_it_forbids(tmp_path):
    assert set(VIOLATIONS) == set(contracts()), "give every contract a violation here"
    for package in ("squirrel_site", *APPS):
        shutil.copytree(BASE / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    shutil.copy(BASE / "pyproject.toml", tmp_path)
    lint = [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"]
    env = dict(os.environ, PYTHONPATH=str(tmp_path))

    kept = subprocess.run(lint, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert kept.returncode == 0, kept.stdout + kept.stderr

    for path, line in VIOLATIONS.values():
        with (tmp_path / path).open("a") as module:
            module.write(f"\n{line}\n")
    broken = subprocess.run(lint, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)

    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert f"Contracts: 0 kept, {len(VIOLATIONS)} broken." in broken.stdout, broken.stdout
    for path, line in VIOLATIONS.values():
        module = path.removesuffix(".py").replace("/", ".")
        imported = line.split()[1]
        assert f"{module} -> {imported}" in broken.stdout, (path, broken.stdout)
