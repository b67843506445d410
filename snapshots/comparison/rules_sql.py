"""The rules of snapshots.comparison.rules as PostgreSQL expressions, for comparing snapshots in SQL.

Each function takes SQL expressions (column names) and returns an expression. They follow
snapshots.comparison.rules exactly (tests/test_rules_sql.py checks them against it on a table of
cases and on random values), including where PostgreSQL's float8 differs from Python's float:

- NaN = NaN is true in PostgreSQL (Python: false); snapshots.comparison.rules counts two NaNs as equal
  too, so `a = b` serves as the equality test.
- PostgreSQL raises "value out of range" where a float8 result overflows (Python gives an
  infinity) or underflows to zero (1e-200 * 1e-200). Operands beyond 1e±150 (1e307 for
  differences) go through squirrel_ieee_subtract / squirrel_ieee_multiply (migration 0006),
  which return what Python computes instead. They are slow (an exception block each), but only
  absurd values reach them.

Structures (the ``structure`` category: typed JSON text) are equal when their texts are. For a
pair whose texts differ, Python (snapshots.comparison.rules.tolerant_pairs, before the query:
snapshots.comparison.structure_pairs.structure_pairs) says whether anything but numbers of number columns
differs, and if not, which numbers; the query gets them as the row's ``decided`` column and
matches them element by element with the row's tolerances, as arrays of numbers. Parsing JSON and
comparing tables column by column stays in one place (those pairs are few: a machine has a few
tables, not 50,000), and the tolerances are the query's own.
"""

from snapshots.comparison.rules import NUMBER, NUMBER_ARRAY, STATUS_RANK, STRUCT, ComparisonStatus
from squirrel_site.epics_values import ARRAY, STR, kinds

# Within these magnitudes float8 arithmetic can neither overflow nor underflow.
DIFFERENCE_SAFE = "1e307::float8"
PRODUCT_SAFE_LOW, PRODUCT_SAFE_HIGH = "1e-150::float8", "1e150::float8"


def delta(a: str, b: str) -> str:
    """b - a for float8 `a` (saved) and `b`, as snapshots.comparison.rules.delta for numbers."""
    return (
        f"(CASE WHEN {a} = {b} THEN 0::float8"
        f" WHEN {a} = 'NaN'::float8 OR {b} = 'NaN'::float8 THEN 'NaN'::float8"
        f" WHEN abs({a}) < {DIFFERENCE_SAFE} AND abs({b}) < {DIFFERENCE_SAFE} THEN {b} - {a}"
        f" ELSE squirrel_ieee_subtract({b}, {a}) END)"
    )


def relative_tolerance(a: str, rel: str) -> str:
    """rel * |a| as Python computes it, also where the product overflows or underflows."""
    safe = f"BETWEEN {PRODUCT_SAFE_LOW} AND {PRODUCT_SAFE_HIGH}"
    return (
        f"(CASE WHEN {rel} = 0 OR {a} = 0 OR ({rel} {safe} AND abs({a}) {safe}) THEN {rel} * abs({a})"
        f" ELSE squirrel_ieee_multiply({rel}, abs({a})) END)"
    )


def numbers_within(a: str, b: str, abs_tol: str, rel_tol: str) -> str:
    """snapshots.comparison.rules.numbers_within_tolerance for float8 `a` (saved) and `b`."""
    return (
        f"(CASE WHEN {a} = {b} THEN true"
        f" WHEN {a} = 'NaN'::float8 OR {b} = 'NaN'::float8"
        f" OR abs({a}) = 'Infinity'::float8 OR abs({b}) = 'Infinity'::float8 THEN false"
        f" ELSE abs({delta(a, b)}) <= greatest({abs_tol}, {relative_tolerance(a, rel_tol)}) END)"
    )


def arrays_within(a: str, b: str, abs_tol: str, rel_tol: str) -> str:
    """Arrays match at equal length when every element pair does (an empty pair matches)."""
    return (
        f"(cardinality({a}) = cardinality({b}) AND coalesce((SELECT bool_and("
        f"{numbers_within('e.x', 'e.y', abs_tol, rel_tol)}) FROM unnest({a}, {b}) AS e(x, y)), true))"
    )


def array_magnitude(a: str, b: str) -> str:
    """The largest |element delta| of arrays of equal length (NaN if any is NaN), else NULL."""
    return (
        f"(CASE WHEN cardinality({a}) = cardinality({b}) THEN"
        f" (SELECT max(abs({delta('e.x', 'e.y')})) FROM unnest({a}, {b}) AS e(x, y)) END)"
    )


def _kinds(**spec) -> str:
    """The SQL list of the kinds whose spec has `spec` (squirrel_site.epics_values.kinds), read when
    the query is built: the SQL names categories and columns, never a kind. A list that would be
    empty holds NULL, which no kind equals."""
    return ", ".join(f"'{kind}'" for kind in sorted(kinds(**spec))) or "NULL"


def status(p: str = "") -> str:
    """snapshots.comparison.rules.comparison_status of a row with columns `{p}in_a`, `{p}a_kind`, `{p}a_num`,
    `{p}a_str`, `{p}a_array`, `{p}a_connected` (the same for b), `{p}abs_tol`, `{p}rel_tol`, and
    `{p}decided`: rules.tolerant_pairs of two structures whose texts differ (jsonb; NULL: none)."""
    a_num, b_num, a_arr, b_arr = f"{p}a_num", f"{p}b_num", f"{p}a_array", f"{p}b_array"
    tolerances = (f"{p}abs_tol", f"{p}rel_tol")
    s = ComparisonStatus
    no_value = "{0}_num IS NULL AND {0}_str IS NULL AND {0}_array IS NULL"
    return (
        f"(CASE WHEN NOT {p}in_a THEN '{s.ONLY_IN_B}'"
        f" WHEN NOT {p}in_b THEN '{s.ONLY_IN_A}'"
        f" WHEN NOT ({p}a_connected AND {p}b_connected) OR ({no_value.format(p + 'a')})"
        f" OR ({no_value.format(p + 'b')}) THEN '{s.DISCONNECTED}'"
        f" WHEN {p}a_kind <> {p}b_kind THEN '{s.TYPE_CHANGED}'"
        f" WHEN {p}a_kind IN ({_kinds(compare=STRUCT)}) AND {p}a_str <> {p}b_str THEN {_structures(p)}"
        f" WHEN CASE WHEN {p}a_kind IN ({_kinds(column=ARRAY)}) THEN {a_arr} = {b_arr}"
        f" WHEN {p}a_kind IN ({_kinds(column=STR)}) THEN {p}a_str = {p}b_str"
        f" ELSE {a_num} = {b_num} END THEN '{s.EQUAL}'"
        f" WHEN CASE WHEN {p}a_kind IN ({_kinds(compare=NUMBER)}) THEN {numbers_within(a_num, b_num, *tolerances)}"
        f" WHEN {p}a_kind IN ({_kinds(compare=NUMBER_ARRAY)}) THEN {arrays_within(a_arr, b_arr, *tolerances)}"
        f" ELSE false END THEN '{s.WITHIN}'"
        f" ELSE '{s.OUT_OF_TOLERANCE}' END)"
    )


def _floats(json_array: str) -> str:
    """A JSON array of numbers written as strings ("1.5", "NaN", "-Infinity") as float8[], in order."""
    return (
        f"ARRAY(SELECT e.x::float8 FROM jsonb_array_elements_text({json_array}) WITH ORDINALITY AS e(x, i)"
        " ORDER BY e.i)"
    )


def _structures(p: str) -> str:
    """The status of two structures whose texts differ: `{p}decided` is rules.tolerant_pairs of
    them ([[saved numbers], [live numbers]]; NULL: they differ beyond any tolerance), whose
    numbers match element by element as arrays do."""
    s = ComparisonStatus
    saved, live = _floats(f"{p}decided -> 0"), _floats(f"{p}decided -> 1")
    return (
        f"(CASE WHEN {p}decided IS NULL THEN '{s.OUT_OF_TOLERANCE}'"
        f" WHEN {arrays_within(saved, live, '0::float8', '0::float8')} THEN '{s.EQUAL}'"
        f" WHEN {arrays_within(saved, live, f'{p}abs_tol', f'{p}rel_tol')} THEN '{s.WITHIN}'"
        f" ELSE '{s.OUT_OF_TOLERANCE}' END)"
    )


def magnitude(p: str = "") -> str:
    """snapshots.comparison.rules.magnitude of the row's delta; NULL unless its values were compared."""
    s = ComparisonStatus
    compared = f"'{s.EQUAL}', '{s.WITHIN}', '{s.OUT_OF_TOLERANCE}'"
    return (
        f"(CASE WHEN {p}status NOT IN ({compared}) THEN NULL"
        f" WHEN {p}a_kind IN ({_kinds(compare=NUMBER)}) THEN abs({delta(p + 'a_num', p + 'b_num')})"
        f" WHEN {p}a_kind IN ({_kinds(compare=NUMBER_ARRAY)}) THEN {array_magnitude(p + 'a_array', p + 'b_array')} END)"
    )


def status_rank(column: str = "status") -> str:
    """The position of a status in snapshots.comparison.rules.STATUS_RANK (what needs attention first)."""
    whens = " ".join(f"WHEN '{status}' THEN {rank}" for status, rank in STATUS_RANK.items())
    return f"(CASE {column} {whens} END)"
