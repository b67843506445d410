"""float8 subtraction and multiplication that overflow and underflow as IEEE 754 (and Python) do.

PostgreSQL raises "value out of range" where a float8 result overflows to an infinity or
underflows to zero; snapshots.comparison_sql calls these only for operands so large or small
that this can happen, and gets what Python computes instead of an error.
"""

from django.db import migrations

CREATE = """
CREATE FUNCTION squirrel_ieee_subtract(x float8, y float8) RETURNS float8
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    RETURN x - y;
EXCEPTION WHEN numeric_value_out_of_range THEN
    -- Only an overflow: x and y have opposite signs, and x - y has the sign of x.
    RETURN sign(x) * 'Infinity'::float8;
END $$;

CREATE FUNCTION squirrel_ieee_multiply(x float8, y float8) RETURNS float8
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    RETURN x * y;
EXCEPTION WHEN numeric_value_out_of_range THEN
    -- Neither operand is zero; |x * y| is beyond 1e308 (overflow) or below 1e-323 (underflow).
    IF ln(abs(x)) + ln(abs(y)) > 0 THEN
        RETURN sign(x) * sign(y) * 'Infinity'::float8;
    END IF;
    RETURN 0::float8;
END $$;
"""

DROP = """
DROP FUNCTION squirrel_ieee_subtract(float8, float8);
DROP FUNCTION squirrel_ieee_multiply(float8, float8);
"""


class Migration(migrations.Migration):
    dependencies = [("snapshots", "0005_snapshot_schedules")]

    operations = [migrations.RunSQL(CREATE, DROP)]
