"""Time the registry import at 50,000 PVs in a throwaway database.

    .venv/bin/python benchmarks/bench_import.py [--rows 50000] [--repeat 5] [--protocols mixed]

`--protocols mixed` writes the addresses with their protocols (a quarter pva://NAME, a quarter
ca://NAME, a quarter a Channel Access setpoint with a pvAccess readback, a quarter bare), which
the importer validates and stores in the registry's spelling; the default writes bare names.

Creates the database `squirrel_bench` (override with SQUIRREL_DB_NAME) if missing, migrates it,
and empties the registry tables between runs: never point it at a database you care about.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import smoke

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "squirrel_site.settings")
os.environ.setdefault("SQUIRREL_DB_NAME", "squirrel_bench")
os.environ.setdefault("SQUIRREL_SECRET_KEY", "benchmark-only")

import django

django.setup()

import psycopg  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from pvs.importers import import_pvs  # noqa: E402
from pvs.models import PV  # noqa: E402
from pvs.validators import address_error  # noqa: E402
from tags.models import Tag, TagGroup  # noqa: E402


def create_database(new: bool = False) -> None:
    """Create and migrate the benchmark's database if missing; `new`: drop it first, so that no
    table has planner statistics (bench_stats: every statistics state starts from one)."""
    db = settings.DATABASES["default"]
    connection.close()  # DROP DATABASE refuses while this process is connected to it
    with psycopg.connect(
        dbname="postgres",
        user=db["USER"],
        password=db["PASSWORD"],
        host=db["HOST"],
        port=db["PORT"],
        autocommit=True,
    ) as admin:
        if new:
            admin.execute(f'DROP DATABASE IF EXISTS "{db["NAME"]}"')
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]).fetchone():
            admin.execute(f'CREATE DATABASE "{db["NAME"]}"')
    call_command("migrate", verbosity=0)


def empty_registry() -> None:
    tables = [PV.tags.through._meta.db_table, PV._meta.db_table, Tag._meta.db_table, TagGroup._meta.db_table]
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        cursor.execute(f"VACUUM ANALYZE {', '.join(tables)}")


# (setpoint prefix, readback prefix) by row, for --protocols mixed.
MIXED = (("pva://", "pva://"), ("ca://", "ca://"), ("", "pva://"), ("", ""))


def addresses(rows: int, protocols: str) -> list[tuple[str, str]]:
    """(setpoint, readback) of each row, as the file writes them."""
    prefixes = MIXED if protocols == "mixed" else (("", ""),)
    pairs = []
    for i in range(rows):
        sp, rb = prefixes[i % len(prefixes)]
        pairs.append((f"{sp}BENCH:AREA{i % 20}:DEV{i}:SETPT", f"{rb}BENCH:AREA{i % 20}:DEV{i}:RBV"))
    return pairs


def registry_csv(rows: int, description: str = "", protocols: str = "bare") -> bytes:
    """`rows` PVs with two tag groups (Area: 20 tags, Subsystem: 8, some cells with two)."""
    lines = ["Setpoint,Readback,Description,Abs Tolerance,Area,Subsystem"]
    for i, (setpoint, readback) in enumerate(addresses(rows, protocols)):
        subsystem = f"SUB{i % 8}" if i % 3 else f'"SUB{i % 8},SUB{(i + 1) % 8}"'
        lines.append(f"{setpoint},{readback},{description}Device {i},{(i % 7) * 0.001!r},AREA{i % 20},{subsystem}")
    return ("\n".join(lines) + "\n").encode()


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def median_time(function, repeat: int, setup=None) -> float:
    """The median wall time of `repeat` calls of `function`, each after `setup()` (untimed)."""
    times = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        times.append(timed(function))
    return statistics.median(times)


def run(name: str, content: bytes, repeat: int, *, dry_run: bool, setup, expect: dict) -> float:
    times = []
    for _ in range(repeat):
        setup()
        result = {}
        times.append(timed(lambda result=result: result.update(report=import_pvs(name, content, dry_run=dry_run))))
        report = result["report"]
        counts = {"new": report.new, "updated": report.updated, "unchanged": report.unchanged}
        assert report.ok and counts == expect, (report.errors[:5], counts)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--protocols", choices=["bare", "mixed"], default="bare")
    args = smoke.parse_args(parser, rows=300, repeat=1)
    create_database()
    content = registry_csv(args.rows, protocols=args.protocols)
    changed = registry_csv(args.rows, description="Renamed ", protocols=args.protocols)
    every_address = [address for pair in addresses(args.rows, args.protocols) for address in pair]
    name = "bench.csv"
    n = args.rows

    def fresh_copy() -> None:
        empty_registry()
        import_pvs(name, content, dry_run=False)

    created = {"new": n, "updated": 0, "unchanged": 0}
    results = {
        "new import (empty registry)": run(
            name, content, args.repeat, dry_run=False, setup=empty_registry, expect=created
        ),
        "dry run (empty registry)": run(name, content, args.repeat, dry_run=True, setup=empty_registry, expect=created),
    }
    fresh_copy()
    results["re-import, all unchanged"] = run(
        name,
        content,
        args.repeat,
        dry_run=False,
        setup=lambda: None,
        expect={"new": 0, "updated": 0, "unchanged": n},
    )
    results["re-import, every description changed"] = run(
        name,
        changed,
        args.repeat,
        dry_run=False,
        setup=fresh_copy,
        expect={"new": 0, "updated": n, "unchanged": 0},
    )
    results["address checks alone (setpoints and readbacks)"] = median_time(
        lambda: [address_error(address) for address in every_address], args.repeat
    )
    print(f"{n} rows ({args.protocols} addresses), 2 tag groups, median of {args.repeat} runs:")
    for label, seconds in results.items():
        print(f"  {label:<48} {seconds:6.3f} s")


if __name__ == "__main__":
    main()
