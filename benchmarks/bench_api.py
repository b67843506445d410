"""Time the PV API's bulk endpoints at 50,000 PVs: create, update, delete, whole requests.

    .venv/bin/python benchmarks/bench_api.py [--rows 50000] [--repeat 3]

Uses the throwaway database `squirrel_bench_registry` (override with SQUIRREL_DB_NAME), created
and migrated if missing; the registry tables are emptied between runs: never point it at a
database you care about. Requests go through Django's test client as an editor (session
login): middleware, JSON parsing, validation, the services' SQL and the audit entry, no network.
Validation and writing are also timed apart, by calling the serializer and the service. The
tables are vacuumed after emptying them, as autovacuum would between real bulk requests.
"""

import argparse
import json
import os

os.environ.setdefault("SQUIRREL_DB_NAME", "squirrel_bench_registry")

import smoke
from bench_import import create_database, empty_registry, median_time
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client

from pvs import services
from pvs.api.serializers import PVChangeSerializer, PVSerializer
from pvs.models import PV
from squirrel_site.audit import AuditVia
from squirrel_site.models import AuditEntry
from tags.models import Tag, TagGroup

BULK = "/api/v1/pvs/bulk/"
DELETE = "/api/v1/pvs/bulk-delete/"


def vocabulary() -> tuple[list[int], list[int]]:
    """The tag ids of Area (20 tags) and Subsystem (8), as bench_import's registry has them."""
    area, subsystem = TagGroup.objects.create(name="Area"), TagGroup.objects.create(name="Subsystem")
    areas = Tag.objects.bulk_create(Tag(group=area, name=f"AREA{i}") for i in range(20))
    subsystems = Tag.objects.bulk_create(Tag(group=subsystem, name=f"SUB{i}") for i in range(8))
    return [tag.id for tag in areas], [tag.id for tag in subsystems]


def new_items(rows: int, areas: list[int], subsystems: list[int]) -> list[dict]:
    """`rows` PVs like bench_import's CSV: readback, description, tolerance, two or three tags."""
    return [
        {
            "setpoint_address": f"BENCH:AREA{i % 20}:DEV{i}:SETPT",
            "readback_address": f"BENCH:AREA{i % 20}:DEV{i}:RBV",
            "description": f"Device {i}",
            "abs_tolerance": (i % 7) * 0.001,
            "tags": [areas[i % 20], subsystems[i % 8]] + ([subsystems[(i + 1) % 8]] if i % 3 == 0 else []),
        }
        for i in range(rows)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = smoke.parse_args(parser, rows=300, repeat=1)
    create_database()
    empty_registry()
    AuditEntry.objects.all().delete()
    user, _ = get_user_model().objects.get_or_create(username="bench-editor")
    user.groups.add(Group.objects.get(name="editor"))
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    areas, subsystems = vocabulary()
    items = new_items(args.rows, areas, subsystems)
    create_body = json.dumps(items).encode()
    by_api = {"actor": user, "via": AuditVia.API}

    state: dict = {}

    def fresh() -> None:
        """An empty registry, vacuumed as autovacuum would between requests minutes apart."""
        services.delete_pvs(PV.objects.all(), **by_api)
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM ANALYZE {PV._meta.db_table}, {PV.tags.through._meta.db_table}")

    def registered() -> None:
        """A registry of the items, and what changes and deletes them, as bodies and as data."""
        fresh()
        ids = services.create_pvs(PVSerializer(data=items, many=True).run_validation(items), **by_api)
        state["changes"] = {pv_id: {"description": f"Renamed {i}", "abs_tolerance": 0.5} for i, pv_id in enumerate(ids)}
        state["change_items"] = [{"id": pv_id, **change} for pv_id, change in state["changes"].items()]
        state["update_body"] = json.dumps(state["change_items"]).encode()
        state["delete_body"] = json.dumps({"ids": ids}).encode()

    def send(method: str, url: str, body: bytes, expect: int) -> None:
        response = getattr(client, method)(url, body, content_type="application/json")
        assert response.status_code == expect, response.content[:500]

    def valid(serializer):
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    created = valid(PVSerializer(data=items, many=True))
    cases = [
        ("create: whole request (POST /pvs/bulk/)", fresh, lambda: send("post", BULK, create_body, 201)),
        ("create: validation only", fresh, lambda: valid(PVSerializer(data=items, many=True))),
        ("create: writing only (services.create_pvs)", fresh, lambda: services.create_pvs(created, **by_api)),
        (
            "update: whole request (PATCH /pvs/bulk/)",
            registered,
            lambda: send("patch", BULK, state["update_body"], 200),
        ),
        (
            "update: validation only",
            registered,
            lambda: valid(PVChangeSerializer(data=state["change_items"], many=True)),
        ),
        (
            "update: writing only (services.update_pvs)",
            registered,
            lambda: services.update_pvs(state["changes"], **by_api),
        ),
        (
            "delete: whole request (POST /pvs/bulk-delete/)",
            registered,
            lambda: send("post", DELETE, state["delete_body"], 200),
        ),
        (
            "delete: writing only (services.delete_pvs)",
            registered,
            lambda: services.delete_pvs(PV.objects.all(), **by_api),
        ),
    ]
    results = {label: median_time(function, args.repeat, setup) for label, setup, function in cases}
    fresh()
    links = sum(len(item["tags"]) for item in items)
    print(f"{args.rows:,} PVs, {links:,} tag links, median of {args.repeat}:")
    for label, seconds in results.items():
        print(f"  {label:<48} {seconds:6.2f} s")


if __name__ == "__main__":
    main()
