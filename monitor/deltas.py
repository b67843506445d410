"""A difference as every page shows it: one rule for the snapshot page (live.js's deltaText), the
restore preview and the restore page. Pure: no Redis, no database."""

from monitor.display import number_text


def delta_text(delta, precision: int | None = None, units: str = "") -> str:
    """number_text with "+" before a positive difference, then the units ("+0.50 mA", "-2",
    "0.00", "NaN"); live.js's deltaText does the same in the browser."""
    text = number_text(delta, precision)
    if isinstance(delta, (int, float)) and not isinstance(delta, bool) and delta > 0:
        text = f"+{text}"
    return f"{text} {units}" if units else text
