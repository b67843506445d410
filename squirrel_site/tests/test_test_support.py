"""Test support lives in one place: squirrel_site.testing and the conftest.py files."""

import ast
import re
import tokenize
from collections import defaultdict
from pathlib import Path

from django.conf import settings

APPS = ("squirrel_site", "pvs", "tags", "snapshots", "jobs", "monitor")

# A hand-written deadline: a clock reading plus a timeout, or compared with one. Waits go through
# squirrel_site.testing.eventually() (elapsed times, `clock() - start`, are fine).
DEADLINE = re.compile(r"\b(?:monotonic|perf_counter|time) \( \) (?:\+|[<>]=?)|\bdeadline [<>]")


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


def deadline_loops(path: Path) -> list[str]:
    """The lines of `path` whose code (not strings or comments) computes or tests a hand-written
    deadline, as "name:line: tokens"."""
    code = defaultdict(list)
    with path.open("rb") as source:
        for token in tokenize.tokenize(source.readline):
            if token.type not in (tokenize.ENCODING, tokenize.STRING, tokenize.COMMENT) and token.string.strip():
                code[token.start[0]].append(token.string)
    lines = {number: " ".join(tokens) for number, tokens in code.items()}
    return [f"{path.name}:{number}: {line}" for number, line in sorted(lines.items()) if DEADLINE.search(line)]


def test_no_test_module_or_conftest_writes_its_own_deadline_loop():
    base = Path(settings.BASE_DIR)
    modules = [base / "conftest.py"]
    for app in APPS:
        modules += [*(base / app).glob("**/test_*.py"), *(base / app).glob("**/conftest.py")]
    offenders = [line for path in modules for line in deadline_loops(path)]
    assert not offenders, "wait with squirrel_site.testing.eventually() instead:\n" + "\n".join(offenders)


def test_the_scan_finds_a_deadline_loop_and_not_an_elapsed_time(tmp_path):
    module = tmp_path / "test_example.py"
    module.write_text(
        "deadline = time.monotonic() + 5\n"
        "while time.monotonic() < deadline:\n"
        "    if time.time() >= end or deadline > now: break\n"
        "elapsed = time.monotonic() - started\n"
        "assert time.monotonic() - killed_at < 15\n"
    )
    assert [line.split(":")[1] for line in deadline_loops(module)] == ["1", "2", "3"]
    module.write_text('print("deadline = time.monotonic() + 5")  # while time.monotonic() < deadline\n')
    assert deadline_loops(module) == []
