"""EPICS values in strict JSON, which has no literal for NaN or the infinities."""

import math


def json_safe(value):
    """`value` with non-finite floats (also inside lists) spelled "NaN", "Infinity", "-Infinity"."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, list):
        return [json_safe(item) for item in value]
    return value
