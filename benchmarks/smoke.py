"""`--smoke`: a benchmark's smallest size, which CI runs (benchmarks/test_smoke.py) so that a
change that breaks a benchmark fails CI rather than the next person to measure.

A smoke run takes the same code paths end to end (every case, every process it starts) at a size
of seconds: a few hundred PVs, one repeat. Its figures mean nothing; its exit status does. Sizes
given explicitly on the command line still win over the smoke sizes.
"""

import argparse


def parse_args(parser: argparse.ArgumentParser, **sizes) -> argparse.Namespace:
    """`parser`'s arguments with a `--smoke` flag that makes `sizes` (dest=value) the defaults."""
    described = ", ".join(f"--{dest.replace('_', '-')} {value}" for dest, value in sizes.items())
    parser.add_argument("--smoke", action="store_true", help=f"smoke size for CI ({described}); figures mean nothing")
    args = parser.parse_args()
    if args.smoke:
        parser.set_defaults(**sizes)
        args = parser.parse_args()
    return args
