"""A kind is one entry in squirrel_site/epics_values.py: a kind registered by a test, in SPECS
only, goes through every codec, the comparison rules (Python and SQL) and a snapshot comparison
with no other module touched; and no module outside epics_values decides by a kind's name."""

import ast
import json
import re
from array import array
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from snapshots.comparison import rules_sql
from snapshots.comparison.api.payloads import comparison_json
from snapshots.comparison.rows import Comparison, compare
from snapshots.comparison.rules import (
    ComparisonStatus,
    comparison_status,
    delta,
    describe_difference,
    within_tolerance,
)
from snapshots.models import Snapshot, SnapshotValue, ValueSource
from squirrel_site import epics_values as ev
from squirrel_site.epics_values import KindSpec, Value

S = ComparisonStatus

# Two kinds that do not exist, each of parts that do: what each is, a value of it, the value
# beside it within a tolerance of 1 (and beyond), its display text with units "u", and the
# Channel Access type it is put to with the decoded put.
NEW_KINDS = {
    "long_array": {
        "spec": KindSpec("long_array", "Array of longs", int, True, ev.ARRAY, ev.NUMBER_ARRAY),
        "value": [1, -2, 3],
        "within": [1, -2, 4],
        "beyond": [1, -2, 5],
        "text": "[1, -2, 3] u",
        "delta": [0.0, 0.0, 2.0],
        "native": ev.DBR_LONG,
        "decode": lambda raw: array("i", raw).tolist(),
    },
    "char_string": {
        "spec": KindSpec("char_string", "Long text", str, False, ev.STR, ev.EXACT),
        "value": "Gun/laser: ü",
        "within": None,  # text has no tolerance
        "beyond": "Gun/laser: u",
        "text": "Gun/laser: ü",
        "delta": None,
        "native": ev.DBR_STRING,
        "decode": lambda raw: raw.rstrip(b"\0").decode(),
    },
}


@pytest.fixture(params=list(NEW_KINDS))
def new_kind(request, monkeypatch):
    """One of NEW_KINDS registered in epics_values.SPECS for the test, and only there."""
    kind = request.param
    monkeypatch.setitem(ev.SPECS, kind, NEW_KINDS[kind]["spec"])
    return kind, NEW_KINDS[kind]


def test_the_new_kinds_are_new():
    assert not set(NEW_KINDS) & set(ev.SPECS)
    assert all(len(kind) <= SnapshotValue._meta.get_field("value_type").max_length for kind in NEW_KINDS)


def test_a_new_kind_goes_through_every_codec(new_kind):
    kind, case = new_kind
    value = case["value"]
    # Redis
    packed = Value("N:1", kind, value, 1, 2, 1700000000.5, 1700000001.0, True)
    assert ev.unpack("N:1", ev.pack(packed)) == packed
    # PostgreSQL columns, strict and lenient
    value_type, num, text, arr = ev.to_columns(kind, value)
    assert value_type == kind and ev.from_columns(kind, num, text, arr) == value
    assert ev.fit_columns(kind, value) == (num, text, arr)
    # API JSON
    assert json.loads(json.dumps(ev.to_json(value))) == value
    # display text
    assert ev.display_text(kind, value, units="u") == case["text"]
    assert ev.text_of(packed) == case["text"].removesuffix(" u")
    # Channel Access put
    elements = len(value) if isinstance(value, list) else 1
    dbr_type, count, raw = ev.put_buffer(case["native"], elements, value)
    assert (dbr_type, count, case["decode"](raw)) == (case["native"], elements, value)
    # the browser's kinds.js
    assert f'"{kind}": "{case["spec"].compare}"' in ev.js_module()


def test_a_new_kind_is_compared_by_its_category(new_kind):
    kind, case = new_kind
    value, within, beyond = case["value"], case["within"], case["beyond"]

    def status(a, b, tolerance=1.0):
        return comparison_status(Value("A", kind, a), Value("B", kind, b), tolerance)

    assert status(value, value) == S.EQUAL
    assert status(value, beyond) == S.OUT_OF_TOLERANCE
    if within is not None:
        assert status(value, within) == S.WITHIN and within_tolerance(value, within, kind, 1.0)
    assert comparison_status(Value("A", kind, value), Value("B", "string", "x")) == S.TYPE_CHANGED
    assert delta(value, beyond, kind) == case["delta"]
    assert describe_difference(value, beyond, kind) != "equal"


def _sql_statuses(kind, pairs, tolerance) -> list[str]:
    """rules_sql.status() of rows of two values of `kind`, as the comparison queries build them."""
    rows, params = [], []
    for a, b in pairs:
        rows.append("(%s, %s::float8, %s, %s::float8[], %s, %s::float8, %s, %s::float8[])")
        params += [*ev.to_columns(kind, a), *ev.to_columns(kind, b)]
    query = f"""
        SELECT {rules_sql.status()} FROM (
            SELECT true AS in_a, true AS in_b, true AS a_connected, true AS b_connected,
                   %s::float8 AS abs_tol, 0::float8 AS rel_tol, NULL::jsonb AS decided, v.*
            FROM (VALUES {", ".join(rows)}) AS v(a_kind, a_num, a_str, a_array, b_kind, b_num, b_str, b_array)
        ) r"""
    with connection.cursor() as cursor:
        cursor.execute(query, [tolerance, *params])
        return [status for (status,) in cursor.fetchall()]


@pytest.mark.django_db
def test_the_sql_rules_compare_a_new_kind_as_the_python_rules_do(new_kind):
    kind, case = new_kind
    pairs = [(case["value"], other) for other in (case["value"], case["within"], case["beyond"]) if other is not None]
    expected = [comparison_status(Value("A", kind, a), Value("B", kind, b), 1.0) for a, b in pairs]
    assert _sql_statuses(kind, pairs, 1.0) == expected
    assert S.OUT_OF_TOLERANCE in expected and S.EQUAL in expected


@pytest.mark.django_db
def test_a_snapshot_comparison_of_a_new_kind(new_kind, admin_user):
    """Saved in a snapshot's columns, compared in SQL, shown and written to the API."""
    kind, case = new_kind
    snapshots = []
    for title, value in (("a", case["value"]), ("b", case["beyond"])):
        snapshot = Snapshot.objects.create(title=title, created_by=admin_user)
        value_type, num, text, arr = ev.to_columns(kind, value)
        SnapshotValue.objects.create(
            snapshot=snapshot,
            pv_name="N:1",
            source=ValueSource.CACHE,
            value_type=value_type,
            setpoint_num=num,
            setpoint_str=text,
            setpoint_array=arr,
            units="u",
            severity=0,
            status=0,
        )
        snapshots.append(snapshot)
    (row,) = compare(Comparison(a=snapshots[0], b=snapshots[1], abs_tolerance=1.0)).rows
    assert (row.kind, row.status, row.a.value, row.b.value) == (kind, S.OUT_OF_TOLERANCE, case["value"], case["beyond"])
    assert row.a.display == case["text"] and row.delta == case["delta"]
    api = comparison_json(row)
    assert (api["kind"], api["a"]["value"], api["a"]["display"]) == (kind, case["value"], case["text"])


# No decision by a kind's name outside epics_values -------------------------------------------

ROOT = Path(settings.BASE_DIR)
PACKAGES = ("squirrel_site", "pvs", "tags", "snapshots", "jobs", "monitor")
# Modules that may name kinds, and why.
ALLOWED = {
    # the one module that defines them
    "squirrel_site/epics_values.py",
}
KIND_ENUMS = {"Kind", "ValueType"}  # epics_values.Kind, and the model choices made from SPECS


def _product_modules():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            parts = set(path.relative_to(ROOT).parts)
            if parts & {"tests", "testing", "migrations"} or relative in ALLOWED:
                continue
            yield relative, path


def kind_name_decisions(source: str, known: set[str]) -> list[str]:
    """Where `source` names a kind: a member of Kind or ValueType (NONE, no kind, aside), or a
    comparison with a kind's name ("enum", ("float", "int"))."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr != "NONE" and node.attr.lower() in known:
            base = node.value
            name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
            if name in KIND_ENUMS:
                found.append(f"line {node.lineno}: {name}.{node.attr}")
        if isinstance(node, ast.Compare):
            for operand in [node.left, *node.comparators]:
                elements = operand.elts if isinstance(operand, (ast.Tuple, ast.List, ast.Set)) else [operand]
                names = [e.value for e in elements if isinstance(e, ast.Constant) and e.value in known]
                if names:
                    found.append(f"line {node.lineno}: compared with {names[0]!r}")
    return found


def test_the_guard_finds_a_decision_by_a_kinds_name():
    known = set(ev.SPECS)
    assert kind_name_decisions("if kind == 'enum': pass", known) == ["line 1: compared with 'enum'"]
    assert kind_name_decisions("x = a in ('float', 'int')", known) == ["line 1: compared with 'float'"]
    assert kind_name_decisions("x = ev.Kind.FLOAT_ARRAY", known) == ["line 1: Kind.FLOAT_ARRAY"]
    assert kind_name_decisions("x = ValueType.ENUM.value", known) == ["line 1: ValueType.ENUM"]
    assert kind_name_decisions("x = ValueType.NONE; y = spec.compare == NUMBER", known) == []


def test_no_module_outside_epics_values_decides_by_a_kinds_name():
    known = set(ev.SPECS)
    found = {
        relative: hits
        for relative, path in _product_modules()
        if (hits := kind_name_decisions(path.read_text(), known))
    }
    assert found == {}, "dispatch on the kind's spec (epics_values.spec_of, kinds, compare_of, is_labelled)"


def template_decisions(text: str, known) -> list[str]:
    """Where a template or script compares a kind (`kind`, `data-kind`, `value_type`) with a
    kind's name, either way round (not a category of the same name: COMPARE[kind] === "enum"
    asks the spec)."""
    names = "|".join(re.escape(kind) for kind in sorted(known))
    kind = r"""\b(kind|value_type)\b[\w.\]\)]*"""
    op = r"""\s*(==|!=|===|!==)\s*"""
    decision = re.compile(rf"""{kind}{op}["']({names})["']|["']({names})["']{op}{kind}""")
    return [match.group(0) for match in decision.finditer(text)]


def test_the_guard_finds_a_template_or_script_deciding_by_a_kinds_name():
    known = set(ev.SPECS)
    assert template_decisions('{% if value.value_type == "enum" and x %}', known) == ['value_type == "enum"']
    assert template_decisions("if (row.dataset.kind === 'float') x();", known) == ["kind === 'float'"]
    assert template_decisions('if ("int_array" !== kind) x();', known) == ['"int_array" !== kind)']
    assert template_decisions('if (how === "enum" || typeof v === "string") x();', known) == []


def test_no_template_or_script_decides_by_a_kinds_name():
    files = [*sorted((ROOT / "templates").rglob("*.html")), *sorted((ROOT / "static").rglob("*.js"))]
    generated = ROOT / ev.JS_MODULE_PATH
    found = [
        f"{path.relative_to(ROOT)}: {decision}"
        for path in files
        if path != generated
        for decision in template_decisions(path.read_text(), set(ev.SPECS))
    ]
    assert len(files) > 10 and found == []
