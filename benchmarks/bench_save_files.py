"""Time importing an autosave .sav file of 50,000 PVs as a snapshot, and exporting one, in a
throwaway database.

    .venv/bin/python benchmarks/bench_save_files.py [--pvs 50000] [--repeat 5]

The file is what an IOC's autosave writes (pvs.sim.autosave_text): doubles, integers, enum indexes,
strings and a few waveforms, every name a registry PV whose kind the newest snapshot knows, so the
import takes its whole path (parse, kind rule with the registry's kinds, checks, COPY). Creates
the database `squirrel_bench` (override with SQUIRREL_DB_NAME) and empties the registry and
snapshot tables first: never point it at a database you care about.
"""

import argparse
import io
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

from bench_import import create_database  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402

from pvs import sim  # noqa: E402
from pvs.models import PV  # noqa: E402
from snapshots.capture import values  # noqa: E402
from snapshots.capture.importers import import_snapshot  # noqa: E402
from snapshots.capture.models import Snapshot, SnapshotOrigin, SnapshotValue  # noqa: E402
from snapshots.capture.save_files import export_snapshot_sav  # noqa: E402
from snapshots.capture.services import save_snapshot  # noqa: E402
from squirrel_site.epics_values import Value  # noqa: E402


def sample(i: int):
    """(kind, value) of PV number `i`: mostly doubles, some integers, enums, strings, waveforms."""
    if i % 100 == 0:
        return "float_array", [float(j) / 7 for j in range(200)]
    return [("float", i / 3.0), ("int", i), ("enum", i % 4), ("string", f"label {i}")][i % 4]


def prepare(n: int, user) -> tuple[bytes, list[str]]:
    """A registry of `n` PVs, one snapshot knowing their kinds, and the .sav file's bytes."""
    with connection.cursor() as cursor:
        # SnapshotValue has no foreign key in the database (CASCADE does not reach it): named too.
        tables = [SnapshotValue._meta.db_table, Snapshot._meta.db_table, PV._meta.db_table]
        cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    names = [f"BENCH:SAV:DEV{i}:SETPT" for i in range(n)]
    PV.objects.bulk_create(PV(setpoint_address=name) for name in names)
    ids = dict(PV.objects.values_list("setpoint_address", "id"))
    rows = []
    for i, name in enumerate(names):
        kind, value = sample(i)
        reading = Value(name, kind, value, timestamp=time.time(), received=time.time())
        rows.append(values.pv_row(ids[name], name, "", reading, None, None, "direct", time.time()))
    save_snapshot(
        title="kinds", comment="", created_by=user, mode="direct", origin=SnapshotOrigin.MANUAL, tags=[], rows=rows
    )
    content = sim.autosave_text([(name, sample(i)[1]) for i, name in enumerate(names)], time.time())
    return content.encode(), names


def timed(function) -> tuple[float, object]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pvs", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = smoke.parse_args(parser, pvs=300, repeat=1)
    create_database()
    user, _ = get_user_model().objects.get_or_create(username="bench-save-files")
    content, names = prepare(args.pvs, user)
    imports, exports = [], []
    for _ in range(args.repeat):
        seconds, snapshot = timed(lambda: import_snapshot("ioc.sav", content, created_by=user))
        assert (snapshot.pv_count, snapshot.unknown_pvs) == (len(names), []), snapshot.unknown_pvs[:5]
        imports.append(seconds)
        stream = io.StringIO()
        seconds, _ = timed(lambda snapshot=snapshot, stream=stream: export_snapshot_sav(snapshot, stream))
        assert stream.getvalue().endswith("<END>\n")
        exports.append(seconds)
    size = len(content) / 1e6
    print(f"{args.pvs} PVs, a {size:.1f} MB autosave file, median of {args.repeat} runs:")
    print(f"  {'import .sav as a snapshot':<34} {statistics.median(imports):6.3f} s")
    print(f"  {'export the snapshot as .sav':<34} {statistics.median(exports):6.3f} s")


if __name__ == "__main__":
    main()
