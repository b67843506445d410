"""snapshots.comparison.rules_sql agrees with snapshots.comparison.rules: one definition of "within tolerance"."""

import math
import random
import struct

import pytest
from django.db import connection

from snapshots.comparison import rules_sql as comparison_sql
from snapshots.comparison.rules import comparison_status, delta, numbers_within_tolerance
from squirrel_site import epics_values
from squirrel_site.epics_values import Value

pytestmark = pytest.mark.django_db

NAN, INF = math.nan, math.inf
DBL_MAX = 1.7976931348623157e308
TWO_TO_1023 = 2.0**1023
SUBNORMAL = 5e-324

# (saved, live, abs_tolerance, rel_tolerance)
CASES = [
    (1.5, 1.5, 0.0, 0.0),
    (1.5, 1.5000001, 0.0, 0.0),
    (10.0, 10.5, 0.5, 0.0),  # the absolute tolerance is inclusive
    (10.0, 10.51, 0.5, 0.0),
    (1.0, 1.1, 0.1, 0.0),  # 1.1 - 1.0 is 0.10000000000000009: outside, in both
    (0.1 + 0.2, 0.3, 0.0, 0.0),
    (200.0, 201.0, 0.0, 0.01),  # relative: 1% of 200
    (200.0, 203.0, 0.0, 0.01),
    (-100.0, -100.9, 0.0, 0.01),  # negative saved value: the magnitude scales
    (-100.0, -101.1, 0.0, 0.01),
    (-100.0, 100.0, 0.0, 2.0),
    (100.0, 104.0, 5.0, 0.01),  # the larger tolerance applies
    (1000.0, 1011.0, 5.0, 0.01),
    (0.0, 1e-12, 0.0, 0.5),  # relative tolerance of zero is zero
    (0.0, -0.0, 0.0, 0.0),
    (-0.0, 0.0, 0.0, 0.0),
    (5.0, 6.0, 1.0, 0.0),
    (5.0, 7.0, 1.0, 0.0),
    (NAN, NAN, 0.0, 0.0),
    (NAN, 1.0, 1e300, 1.0),
    (1.0, NAN, 1e300, 1.0),
    (INF, INF, 0.0, 0.0),
    (-INF, -INF, 0.0, 0.0),
    (INF, -INF, 1e300, 1.0),
    (INF, 1e308, 1e300, 1.0),
    (1e308, INF, DBL_MAX, 1.0),
    (-INF, 0.0, 0.0, 0.0),
    (NAN, INF, 0.0, 0.0),
    # Differences and products that overflow (PostgreSQL would raise, Python gives infinity).
    (1e308, -1e308, 0.0, 0.0),
    (1e308, -1e308, 1e300, 10.0),
    (-DBL_MAX, DBL_MAX, DBL_MAX, 0.0),
    (DBL_MAX, -DBL_MAX, 0.0, 1.5),
    (DBL_MAX, DBL_MAX * 0.5, 0.0, 0.5),
    (TWO_TO_1023, -TWO_TO_1023, 0.0, 0.0),
    (TWO_TO_1023, 0.0, 0.0, 2.0),  # rel * |saved| is exactly 2**1024: overflows
    (DBL_MAX, 0.0, 0.0, 1.0000001),
    (DBL_MAX, 1.0, 0.0, DBL_MAX),
    (1e-300, 2e-300, 0.0, 1e300),
    (1e200, 1e201, 0.0, 1e150),
    (SUBNORMAL, 2 * SUBNORMAL, 0.0, 0.0),
    (SUBNORMAL, -SUBNORMAL, 2 * SUBNORMAL, 0.0),
    (SUBNORMAL, DBL_MAX, 0.0, 0.0),
    (-DBL_MAX, SUBNORMAL, 0.0, 0.0),
]


def _sql_results(cases):
    """(within, delta, relative tolerance) of each case, computed by PostgreSQL."""
    a, b, at, rt = (list(column) for column in zip(*cases, strict=True))
    query = (
        f"SELECT {comparison_sql.numbers_within('a', 'b', 'at', 'rt')}, {comparison_sql.delta('a', 'b')},"
        f" {comparison_sql.relative_tolerance('a', 'rt')}"
        " FROM unnest(%s::float8[], %s::float8[], %s::float8[], %s::float8[]) WITH ORDINALITY AS t(a, b, at, rt, n)"
        " ORDER BY n"
    )
    with connection.cursor() as cursor:
        cursor.execute(query, [a, b, at, rt])
        return cursor.fetchall()


def _same_float(x: float, y: float) -> bool:
    return (math.isnan(x) and math.isnan(y)) or x == y


def _disagreements(cases):
    problems = []
    for (a, b, at, rt), (within, difference, relative) in zip(cases, _sql_results(cases), strict=True):
        if within != numbers_within_tolerance(a, b, at, rt):
            problems.append(("within", a, b, at, rt, within))
        if not _same_float(difference, delta(a, b, "float")):
            problems.append(("delta", a, b, difference, delta(a, b, "float")))
        if not (math.isnan(a) or _same_float(relative, rt * abs(a))):
            problems.append(("relative tolerance", a, rt, relative, rt * abs(a)))
    return problems


def test_sql_and_compare_py_agree_on_the_table_of_cases():
    assert _disagreements(CASES) == []


def _random_double(rng: random.Random) -> float:
    choice = rng.random()
    if choice < 0.3:
        return rng.uniform(-1000, 1000)
    if choice < 0.4:
        return round(rng.uniform(-10, 10), 2)
    if choice < 0.5:
        return rng.choice([0.0, -0.0, NAN, INF, -INF, DBL_MAX, -DBL_MAX, TWO_TO_1023, SUBNORMAL])
    # Any bit pattern: every exponent, subnormals, NaNs.
    return struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]


def _random_tolerance(rng: random.Random) -> float:
    value = abs(_random_double(rng))
    if math.isnan(value) or math.isinf(value):
        return 0.0
    return rng.choice([0.0, value, rng.uniform(0, 2), 10 ** rng.uniform(-12, 3)])


def test_sql_and_compare_py_agree_on_random_values():
    rng = random.Random(20261124)
    cases = []
    for _ in range(5000):
        a = _random_double(rng)
        b = rng.choice([a, _random_double(rng), a + rng.uniform(-1, 1), a * (1 + rng.uniform(-0.02, 0.02))])
        cases.append((a, b, _random_tolerance(rng), _random_tolerance(rng)))
    assert _disagreements(cases) == []


def test_array_expressions_compare_element_by_element():
    cases = [
        ([1.0, 2.0], [1.0, 2.0], True, 0.0),
        ([1.0, 2.0], [1.0, 2.5], False, 0.5),
        ([1.0, 2.0], [1.0], False, None),  # different lengths never match and have no delta
        ([], [], True, None),
        ([NAN, 1.0], [NAN, 1.0], True, 0.0),
        ([1.0, NAN], [1.0, 2.0], False, NAN),
        ([1e308, 0.0], [-1e308, 0.0], False, INF),
    ]
    query = (
        f"SELECT {comparison_sql.arrays_within('a', 'b', '0::float8', '0::float8')},"
        f" {comparison_sql.array_magnitude('a', 'b')} FROM (SELECT %s::float8[] AS a, %s::float8[] AS b) t"
    )
    with connection.cursor() as cursor:
        for a, b, expected_within, expected_size in cases:
            cursor.execute(query, [a, b])
            got_within, got_size = cursor.fetchone()
            assert got_within == expected_within, (a, b)
            assert (got_size is None and expected_size is None) or _same_float(got_size, expected_size), (a, b)


@pytest.mark.parametrize(
    "saved, live",
    [
        (["a", "b"], ["a", "b"]),
        (["a", "b"], ["a", "c"]),
        (["a", "b"], ["a"]),
        (["a"], ["a", "b"]),
        (['ü, "q"', "x"], ['ü, "q"', "x"]),
        (["a", "b"], ["b", "a"]),
    ],
)
def test_sql_status_of_string_arrays_agrees_with_the_rules(saved, live):
    # String arrays are stored as JSON text in *_str (squirrel_site.epics_values.to_columns).
    _, _, a_str, _ = epics_values.to_columns("string_array", saved)
    _, _, b_str, _ = epics_values.to_columns("string_array", live)
    query = (
        f"SELECT {comparison_sql.status()} FROM (SELECT true AS in_a, true AS in_b, 'string_array' AS a_kind,"
        " 'string_array' AS b_kind, NULL::float8 AS a_num, NULL::float8 AS b_num, %s::text AS a_str,"
        " %s::text AS b_str, NULL::float8[] AS a_array, NULL::float8[] AS b_array, true AS a_connected,"
        " true AS b_connected, 0::float8 AS abs_tol, 0::float8 AS rel_tol, NULL::jsonb AS decided) AS t"
    )
    with connection.cursor() as cursor:
        cursor.execute(query, [a_str, b_str])
        in_sql = cursor.fetchone()[0]
    expected = comparison_status(Value("X", "string_array", saved), Value("X", "string_array", live))
    assert in_sql == expected
    assert (expected == "equal") == (saved == live)
