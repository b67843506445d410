"""Test support lives in one place: squirrel_site.testing and the conftest.py files."""

import ast
from pathlib import Path

from django.conf import settings

APPS = ("squirrel_site", "pvs", "tags", "snapshots", "jobs", "monitor")


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports (absolute names; relative ones keep their leading dots)."""
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            modules.add("." * node.level + (node.module or ""))
    return modules


def test_no_test_module_imports_another_test_module_or_a_conftest():
    base = Path(settings.BASE_DIR)
    offenders = {
        f"{path.relative_to(base)} imports {module}"
        for app in APPS
        for path in (base / app).glob("**/tests/*.py")
        for module in imported_modules(path)
        if ".tests" in module or module.startswith(".") or module.rsplit(".", 1)[-1] == "conftest"
    }
    assert not offenders, sorted(offenders)


def test_the_scan_finds_an_import_of_a_test_module(tmp_path):
    module = tmp_path / "test_example.py"
    module.write_text("from snapshots.tests.test_api import helper\n")
    assert imported_modules(module) == {"snapshots.tests.test_api"}
