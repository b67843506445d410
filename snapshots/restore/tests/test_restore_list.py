"""The restores page: who restored what, when, with what result; filtered and paged."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from snapshots.capture.models import Snapshot, SnapshotMode, SnapshotOrigin
from snapshots.restore.models import Restore, RestorePreview, RestoreStatus

pytestmark = pytest.mark.django_db


def restore_of(snapshot, user, **fields):
    preview = RestorePreview.objects.create(
        snapshot=snapshot, created_by=user, expires_at=timezone.now(), live_source="cache", write_count=3
    )
    return Restore.objects.create(preview=preview, snapshot=snapshot, created_by=user, **fields)


def snapshot_of(user, title, origin=SnapshotOrigin.MANUAL):
    return Snapshot.objects.create(title=title, created_by=user, mode=SnapshotMode.CACHE, origin=origin)


def _rows(page: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<tr data-restore="(\d+)"', page)]


@pytest.fixture
def restores(make_user):
    alice, bob = make_user("operator", "alice"), make_user("operator", "bob")
    shift = snapshot_of(alice, "Shift start")
    done = restore_of(
        shift,
        alice,
        status=RestoreStatus.PARTIAL,
        finished_at=timezone.now(),
        summary={"verified": 2, "mismatch": 1},
    )
    undo_point = snapshot_of(alice, f"Before restore #{done.pk}", SnapshotOrigin.PRE_RESTORE)
    undo = restore_of(undo_point, bob)
    old = restore_of(shift, bob, status=RestoreStatus.SUCCEEDED, summary={"verified": 3})
    Restore.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=3))
    return {"done": done, "undo": undo, "old": old}


def test_the_restores_page_shows_who_what_when_and_the_result(client, viewer, restores):
    client.force_login(viewer)
    page = client.get(reverse("snapshots:restore_list")).text
    done = restores["done"]
    assert _rows(page) == [restores["old"].pk, restores["undo"].pk, done.pk]
    row = page[page.index(f'<tr data-restore="{done.pk}"') :].split("</tr>")[0]
    assert f'href="{reverse("snapshots:restore", args=[done.pk])}"' in row
    assert f'href="{reverse("snapshots:detail", args=[done.snapshot_id])}">Shift start</a>' in row
    assert "alice" in row and "Partial" in row and "Verified: 2, Readback outside tolerance: 1" in row
    assert timezone.localtime(done.created_at).strftime("%Y-%m-%d %H:%M:%S") in row
    undo_row = page[page.index(f'<tr data-restore="{restores["undo"].pk}"') :].split("</tr>")[0]
    assert "<td>Undo</td>" in undo_row and "bob" in undo_row


def test_the_restores_page_filters_by_kind_state_user_title_and_day(client, viewer, restores):
    client.force_login(viewer)
    url = reverse("snapshots:restore_list")
    done, undo, old = restores["done"].pk, restores["undo"].pk, restores["old"].pk
    assert _rows(client.get(url, {"kind": "undo"}).text) == [undo]
    assert _rows(client.get(url, {"kind": "restore"}).text) == [old, done]
    assert _rows(client.get(url, {"status": "partial"}).text) == [done]
    assert _rows(client.get(url, {"user": "Bob"}).text) == [old, undo]
    assert _rows(client.get(url, {"snapshot": "shift"}).text) == [old, done]
    today = timezone.localdate().isoformat()
    assert _rows(client.get(url, {"date_from": today}).text) == [undo, done]
    assert _rows(client.get(url, {"kind": "", "status": "", "user": ""}).text) == [old, undo, done]
    bad = client.get(url, {"kind": "everything", "date_to": "31/12"})
    assert bad.status_code == 400 and _rows(bad.text) == [] and "Select a valid choice" in bad.text


def test_the_restores_page_pages_with_a_bounded_number_of_queries(
    client, viewer, make_user, django_assert_max_num_queries
):
    operator = make_user("operator", "operator")
    snapshot = snapshot_of(operator, "Many")
    made = [restore_of(snapshot, operator).pk for _ in range(51)]
    client.force_login(viewer)
    with django_assert_max_num_queries(8):
        first = client.get(reverse("snapshots:restore_list")).text
    assert _rows(first) == made[::-1][:50] and 'rel="next"' in first
    assert _rows(client.get(reverse("snapshots:restore_list"), {"page": 2}).text) == [made[0]]


def test_a_restore_and_its_preview_are_under_restores_in_the_nav(client, viewer, restores):
    client.force_login(viewer)
    done = restores["done"]
    for url in (
        reverse("snapshots:restore", args=[done.pk]),
        reverse("snapshots:restore_preview", args=[done.preview_id]),
    ):
        page = client.get(url).text
        assert 'class="active">Restores</a>' in page and page.count('class="active"') == 1
