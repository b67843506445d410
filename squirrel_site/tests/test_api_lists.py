"""The lists of snapshots, jobs, values, restores, restore and preview items and live values read
one page in a fixed number of queries and never count rows (COUNT(*) over 50,000 values, or a
growing job table, would cost more than the page itself). The PV and tag lists have their own
tests (pvs/tests/test_api.py, tags/tests/test_api.py)."""

import pytest

from jobs.models import Job, JobType
from snapshots.models import Restore, RestoreItem, RestoreItemStatus, RestorePreview, RestoreStatus
from snapshots.restore.preview import preview_restore

pytestmark = pytest.mark.django_db

PAGE = 50  # the jobs and restores lists' page, which takes no page_size


@pytest.fixture
def archive(admin_user, make_pvs, make_snapshot, live_values):
    """More of everything than a page shows (page_size=2 where a list takes it; the jobs and restores
    lists show 50); the URLs of the lists, by name."""
    make_pvs("L:A", "L:B", "L:C", abs_tolerance=0.1)
    values = {"L:A": 1.0, "L:B": 2.0, "L:C": 3.0}
    snapshots = [make_snapshot(f"Snapshot {i}", values) for i in range(3)]
    live_values({"L:A": 1.5, "L:B": 2.5, "L:C": 3.5})
    preview = preview_restore(snapshots[0], created_by=admin_user, cache_only=True)
    previews = RestorePreview.objects.bulk_create(
        RestorePreview(
            snapshot=snapshots[0], created_by=admin_user, expires_at=preview.expires_at, live_source=preview.live_source
        )
        for _ in range(PAGE + 1)
    )
    restores = Restore.objects.bulk_create(
        Restore(preview=p, snapshot=snapshots[0], created_by=admin_user, status=RestoreStatus.SUCCEEDED)
        for p in previews
    )
    RestoreItem.objects.bulk_create(
        RestoreItem(
            restore=restores[0], pv_name=name, value_type="float", target_num=value, status=RestoreItemStatus.VERIFIED
        )
        for name, value in values.items()
    )
    Job.objects.bulk_create(Job(type=JobType.SNAPSHOT, created_by=admin_user) for _ in range(PAGE + 1))
    return {
        "snapshots": "/api/v1/snapshots/",
        "jobs": "/api/v1/jobs/",
        "values": f"/api/v1/snapshots/{snapshots[1].id}/values/",
        "restores": "/api/v1/restores/",
        "restore items": f"/api/v1/restores/{restores[0].id}/items/",
        "preview items": f"/api/v1/restore-previews/{preview.id}/items/",
        "live": "/api/v1/live/",
    }


# Every request: the session and its user (force_login); then what each list reads.
@pytest.mark.parametrize(
    ("name", "queries"),
    [
        ("snapshots", 2 + 2),  # the page; the page's tags
        ("jobs", 2 + 1),  # the page
        ("values", 2 + 3),  # the snapshot and its tags (get_object); the page
        ("restores", 2 + 1),  # the page
        ("restore items", 2 + 2),  # the restore; the page
        ("preview items", 2 + 2),  # the preview; the page
        ("live", 2 + 1),  # the page of PVs (their values come from Redis)
    ],
)
def test_a_list_reads_one_page_in_fixed_queries_without_counting(
    client, admin_user, archive, django_assert_num_queries, name, queries
):
    client.force_login(admin_user)

    with django_assert_num_queries(queries) as captured:
        response = client.get(archive[name], {"page_size": 2})

    assert response.status_code == 200, response.content
    body = response.json()
    assert len(body["results"]) in (2, PAGE) and body["next"] and "count" not in body
    assert not [q["sql"] for q in captured.captured_queries if "COUNT(" in q["sql"].upper()]
