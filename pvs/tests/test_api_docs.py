"""docs/api_registry.md's Python example, run against a live server so the page stays true."""

import re
from pathlib import Path

import pytest
from knox.models import AuthToken

from pvs.models import PV
from tags.models import Tag, TagGroup

DOC = Path(__file__).resolve().parents[2] / "docs" / "api_registry.md"


def python_example() -> str:
    [code] = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    return code


@pytest.mark.django_db(transaction=True)
def test_the_python_example_runs_as_documented(live_server, editor, capsys):
    Tag.objects.create(group=TagGroup.objects.create(name="Area"), name="LI20")
    _, token = AuthToken.objects.create(editor)
    code = python_example()
    # The server, the token, and 40 PVs instead of 40,000 (the same point, faster).
    for old, new in [
        ("http://127.0.0.1:8000", live_server.url),
        ("Token sqt_...", f"Token {token}"),
        ("range(1, 40_001)", "range(1, 41)"),
    ]:
        assert old in code, f"the example no longer has {old!r}; update this test"
        code = code.replace(old, new)
    exec(compile(code, str(DOC), "exec"), {})
    assert capsys.readouterr().out.splitlines() == ["{'updated': 40, 'unchanged': 0}", "{'deleted': 40}"]
    assert not PV.objects.exists()
