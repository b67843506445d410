"""The planner-statistics state a benchmark measures in: `--stats none|stale|fresh`.

A bulk statement's plan depends on what ANALYZE last saw, and an installation spends most of its
life between two ANALYZE runs (autovacuum's thresholds, or none at all where it is off): the rows
a restore or a compare reads were written after the statistics, with ids beyond their histograms.
Every state therefore starts from a newly created database (never analyzed), does the same
earlier work, and differs only in when ANALYZE runs:

- none: never; the planner sees the tables' sizes but no statistics (a new installation);
- stale: once, after the earlier work, so the measured rows are newer than the statistics;
- fresh: right before the measured work (what the benchmarks used to do, and the kindest case).

The figure to publish is the worst of the three.
"""

import argparse

STATES = ("none", "stale", "fresh")


def add_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stats",
        choices=STATES,
        default="stale",
        help="planner statistics: none (never analyzed), stale (analyzed once before the measured data), "
        "fresh (analyzed right before the measured work)",
    )


def analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


class Statistics:
    """Runs ANALYZE where the chosen state says: `history_done()` after the earlier work,
    `before_timing()` right before the measured work (or each measured call)."""

    def __init__(self, state: str):
        self.state = state

    def history_done(self) -> None:
        if self.state == "stale":
            analyze()

    def before_timing(self) -> None:
        if self.state == "fresh":
            analyze()
