"""Time the PV admin at 50,000 PVs: list pages with filters, and bulk actions on "select all".

    .venv/bin/python benchmarks/bench_admin.py [--rows 50000] [--repeat 5]

Uses the throwaway database of bench_import.py (`squirrel_bench`): never point it at a
database you care about.
"""

import argparse

import smoke
from bench_import import create_database, empty_registry, median_time, registry_csv  # sets up Django
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import reverse

from pvs.importers import import_pvs
from pvs.models import PV
from tags.models import Tag, TagGroup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = smoke.parse_args(parser, rows=300, repeat=1)

    create_database()
    call_command("collectstatic", interactive=False, verbosity=0)  # the pages need the manifest
    empty_registry()
    report = import_pvs("bench.csv", registry_csv(args.rows), dry_run=False)
    assert report.ok and report.new == args.rows, report.errors[:3]
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    # bench_restore makes a plain "bench" user in the same database: make sure it may use the admin.
    user, _ = get_user_model().objects.update_or_create(
        username="bench", defaults={"is_superuser": True, "is_staff": True}
    )
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    changelist = reverse("admin:pvs_pv_changelist")
    area = TagGroup.objects.get(name="Area")
    tag = Tag.objects.get(group=area, name="AREA3")

    # Page 200 of the list (the last one when there are fewer: a page beyond it redirects).
    far_page = min(199, (args.rows - 1) // admin.site.get_model_admin(PV).list_per_page)
    print(f"PV admin, {PV.objects.count():,} PVs, median of {args.repeat}")
    pages = {
        "list, first page": {},
        f"list, page {far_page + 1}": {"p": str(far_page)},
        "search 'DEV4999'": {"q": "DEV4999"},
        "filter tag group": {"tag_group": area.id},
        "filter tag": {"tag": tag.id},
        "filter device prefix": {"device": "Device 4"},
        "filter read-only + readback": {"read_only__exact": "0", "has_readback": "yes"},
    }
    for label, query in pages.items():

        def get(query=query, label=label):
            response = client.get(changelist, query)
            assert response.status_code == 200, (label, response.status_code)

        queries = []
        # Django resets its own query log at each request, so count at the cursor instead.
        with connection.execute_wrapper(lambda execute, *a, queries=queries: queries.append(1) or execute(*a)):
            get()
        print(f"  {label:32s} {median_time(get, args.repeat) * 1000:7.1f} ms  {len(queries)} queries")

    select_all = {"select_across": "1", "index": "0", ACTION_CHECKBOX_NAME: [PV.objects.first().id], "apply": "Apply"}
    new_tag = Tag.objects.get_or_create(group=area, name="BENCH")[0]
    actions = {
        "add tag to all": {"action": "add_tags", "tags": [new_tag.id]},
        "remove tag from all": {"action": "remove_tags", "tags": [new_tag.id]},
        "set tolerances of all": {"action": "set_tolerances", "abs_tolerance": "0.01", "rel_tolerance": ""},
        "mark all read-only": {"action": "mark_read_only"},
        "mark all writable": {"action": "mark_writable"},
    }
    for label, post in actions.items():

        def act(post=post):
            response = client.post(changelist, {**select_all, **post})
            assert response.status_code == 302, response.status_code

        print(f"  {label:32s} {median_time(act, 1) * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
