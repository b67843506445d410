"""Restore from the pages: select rows, preview, confirm, results, undo; permissions and refusals.

Live values come from Redis (the live_values fixture keeps the monitor fresh), so previews read
no Channel Access; executions run here through a fake IOC, as a worker would run them.
"""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from jobs.models import Job, JobType
from pvs.models import PV, PVSet
from pvs.pv_sets import pv_ids, save_pv_set
from snapshots.models import RestoreAction, RestorePreview, SnapshotValue
from squirrel_site.audit import AuditVia
from squirrel_site.testing.restore import make_preview, preview_of

pytestmark = pytest.mark.django_db


def actions(preview) -> dict[str, str]:
    return dict(preview.items.values_list("pv_name", "action"))


def test_a_viewer_may_not_make_a_preview(client, viewer, saved):
    client.force_login(viewer)
    response = preview_of(client, saved, scope="all")
    assert response.status_code == 403
    assert not RestorePreview.objects.exists()


def test_preview_of_every_pv(client, operator, saved):
    client.force_login(operator)
    response = preview_of(client, saved, scope="all")
    preview = RestorePreview.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "snapshots:restore_preview", args=[preview.pk]
    )
    assert actions(preview) == {"R:A": "write", "R:B": "write", "R:C": "skip_unchanged", "R:D": "skip_read_only"}
    assert preview.created_by == operator


def test_preview_of_the_checked_rows(client, operator, saved):
    client.force_login(operator)
    b = PV.objects.get(setpoint_address="R:B")
    preview_of(client, saved, scope="checked", pv=[b.pk])
    assert actions(RestorePreview.objects.get()) == {"R:B": "write"}


def test_preview_of_the_filtered_rows_uses_the_pages_filters(client, operator, saved):
    client.force_login(operator)
    preview_of(client, saved, scope="filtered", **{"filter-device": "MAG", "filter-out_of_tolerance": "on"})
    assert actions(RestorePreview.objects.get()) == {"R:A": "write", "R:B": "write"}


def pv_set_of(*names: str, name: str = "Set") -> PVSet:
    return save_pv_set(PVSet(name=name), member_ids=pv_ids(names), actor=None, via=AuditVia.PAGE)


def test_preview_of_every_pv_of_a_pv_set(client, operator, saved):
    client.force_login(operator)
    pv_set = pv_set_of("R:B", "R:C")
    page = client.get(reverse("snapshots:detail", args=[saved.pk])).text
    assert f'<option value="{pv_set.pk}">Set</option>' in page
    preview_of(client, saved, scope="all", pv_set=pv_set.pk)
    assert actions(RestorePreview.objects.get()) == {"R:B": "write", "R:C": "skip_unchanged"}


def test_a_pv_set_narrows_the_checked_and_the_filtered_rows(client, operator, saved):
    client.force_login(operator)
    pv_set = pv_set_of("R:B", "R:C")
    a, b = PV.objects.get(setpoint_address="R:A"), PV.objects.get(setpoint_address="R:B")
    preview_of(client, saved, scope="checked", pv=[a.pk, b.pk], pv_set=pv_set.pk)
    assert actions(RestorePreview.objects.get()) == {"R:B": "write"}
    RestorePreview.objects.all().delete()
    preview_of(client, saved, scope="filtered", pv_set=pv_set.pk, **{"filter-device": "MAG"})
    assert actions(RestorePreview.objects.get()) == {"R:B": "write"}


def test_a_pv_set_with_no_pv_in_the_snapshot_is_refused(client, operator, saved):
    PV.objects.create(setpoint_address="R:ELSEWHERE")
    pv_set = pv_set_of("R:ELSEWHERE")
    client.force_login(operator)
    response = preview_of(client, saved, scope="all", pv_set=pv_set.pk)
    assert response.status_code == 302 and not RestorePreview.objects.exists()
    assert "None of these PVs of the set “Set” is in this snapshot." in client.get(response["Location"]).text


def test_include_unchanged_writes_pvs_already_within_tolerance(client, operator, saved):
    client.force_login(operator)
    preview_of(client, saved, scope="filtered", include_unchanged="on", **{"filter-device": "RF:1"})
    assert actions(RestorePreview.objects.get()) == {"R:C": "write"}


@pytest.mark.parametrize(
    "post, message",
    [
        ({"scope": "checked"}, "Check at least one row to restore the checked rows."),
        ({"scope": "everything"}, "Select a valid choice. everything is not one of the available choices."),
        ({"scope": "checked", "pv": ["x"]}, "“x” is not a valid value."),
        ({"scope": "all", "pv_set": "999999"}, "Select a valid choice."),
        ({"scope": "filtered", "filter-severity": "7"}, "The filters are not valid; fix them and try again."),
    ],
)
def test_a_bad_selection_returns_to_the_snapshot_with_a_readable_message(client, operator, saved, post, message):
    client.force_login(operator)
    response = preview_of(client, saved, **post, **{"filter-name": "R:"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("snapshots:detail", args=[saved.pk]))
    assert "name=R%3A" in response["Location"]
    page = client.get(response["Location"]).text
    assert message in page.replace("&quot;", '"')
    assert not RestorePreview.objects.exists()


def test_preview_page_shows_what_would_be_written_and_the_confirm_form(
    client, operator, saved, django_assert_max_num_queries
):
    client.force_login(operator)
    preview = make_preview(client, saved)
    # Fixed: the refusal check alone is four (restore, items, deleted PVs, fingerprint); the stage
    # legend one.
    with django_assert_max_num_queries(14):
        response = client.get(reverse("snapshots:restore_preview", args=[preview.pk]))
    page = response.text
    assert [row["item"].pv_name for row in response.context["rows"]] == ["R:A", "R:B"]
    assert "To write (2)" in page and "Unchanged (1)" in page and "Read-only (1)" in page and "All (4)" in page
    assert 'id="confirm-restore"' in page and "Restore 2 PVs" in page
    everything = client.get(reverse("snapshots:restore_preview", args=[preview.pk]), {"action": "all"})
    assert [row["item"].pv_name for row in everything.context["rows"]] == ["R:A", "R:B", "R:C", "R:D"]


def test_preview_values_are_shown_with_the_snapshots_units_and_precision(client, operator, saved):
    SnapshotValue.objects.filter(pv_name="R:A").update(units="mA", precision=3)
    client.force_login(operator)
    preview = make_preview(client, saved)
    response = client.get(reverse("snapshots:restore_preview", args=[preview.pk]))
    row = response.context["rows"][0]
    assert (row["target"], row["live"], row["delta"]) == ("1.000 mA", "2.000 mA", "+1.000 mA")
    assert '<td class="delta num nowrap">+1.000 mA</td>' in response.text


def test_a_preview_shows_the_live_readbacks_the_stages_and_when_it_expires(client, operator, saved):
    PV.objects.filter(setpoint_address="R:A").update(readback_address="R:A:RB", restore_stage=2)
    client.force_login(operator)
    preview = make_preview(client, saved)
    page = client.get(reverse("snapshots:restore_preview", args=[preview.pk]), {"action": "all"}).text
    # The readback is a live cell (static/squirrel/live.js); a PV without one says so.
    assert '<span data-live-address="R:A:RB" title="R:A:RB, live"></span>' in page
    assert 'title="This PV has no readback address">—</span>' in page
    assert "<dd><strong>0</strong> written first: 3 PVs</dd>" in page
    assert "<dd><strong>2</strong> written last: 1 PV</dd>" in page
    expires = timezone.localtime(preview.expires_at)
    assert f"<dt>Valid until</dt><dd>{expires:%Y-%m-%d %H:%M:%S} {expires:%Z}</dd>" in page


def test_a_negative_delta_is_signed_and_enum_targets_show_their_label_with_the_index_beside(
    client, operator, saved, live_values
):
    SnapshotValue.objects.filter(pv_name="R:A").update(units="V", precision=1, setpoint_num=3.0)
    SnapshotValue.objects.filter(pv_name="R:B").update(value_type="enum", setpoint_num=1, enum_labels=["Off", "On"])
    live_values({"R:B": 0})
    client.force_login(operator)
    preview = make_preview(client, saved)
    response = client.get(reverse("snapshots:restore_preview", args=[preview.pk]))
    rows = {row["item"].pv_name: row for row in response.context["rows"]}
    assert rows["R:A"]["delta"] == "-1.0 V"
    assert (rows["R:B"]["target"], rows["R:B"]["target_index"], rows["R:B"]["delta"]) == ("On", 1, "")
    assert '<td class="value" title="index 1"><span class="clip">On</span></td>' in response.text


def test_a_viewer_sees_a_preview_but_no_confirm_button(client, operator, viewer, saved):
    client.force_login(operator)
    preview = make_preview(client, saved)
    client.force_login(viewer)
    page = client.get(reverse("snapshots:restore_preview", args=[preview.pk])).text
    assert 'id="confirm-restore"' not in page and "restoring needs the permission snapshots.add_restore" in page


def execute(client, preview, **post):
    return client.post(
        reverse("snapshots:restore_execute", args=[preview.pk]), {"verify": "on", "verify_timeout": "5", **post}
    )


def test_confirming_enqueues_the_restore_job_and_follows_it(
    client, operator, saved, django_capture_on_commit_callbacks
):
    client.force_login(operator)
    preview = make_preview(client, saved)
    with django_capture_on_commit_callbacks() as callbacks:
        response = execute(client, preview, verify_timeout="2.5")
    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("jobs:detail", args=[job.pk])
    assert (job.type, job.data) == (JobType.RESTORE, {"preview": preview.pk, "verify": True, "verify_timeout": 2.5})
    assert len(callbacks) == 1
    # Until a worker picks it up, the preview page follows the job too.
    page = client.get(reverse("snapshots:restore_preview", args=[preview.pk])).text
    assert f'data-job-id="{job.pk}"' in page and 'id="confirm-restore"' not in page


def test_a_viewer_may_not_confirm(client, operator, viewer, saved):
    client.force_login(operator)
    preview = make_preview(client, saved)
    client.force_login(viewer)
    assert execute(client, preview).status_code == 403
    assert not Job.objects.exists()


def test_a_bad_verification_timeout_is_a_form_error(client, operator, saved):
    client.force_login(operator)
    preview = make_preview(client, saved)
    response = execute(client, preview, verify_timeout="forever")
    assert response.status_code == 400 and "Enter a number." in response.text
    response = execute(client, preview, verify_timeout="1000")
    assert response.status_code == 400 and "Ensure this value is less than or equal to 300.0." in response.text
    assert not Job.objects.exists()


def test_an_expired_preview_is_refused_with_a_readable_message(client, operator, saved):
    client.force_login(operator)
    preview = make_preview(client, saved)
    RestorePreview.objects.filter(pk=preview.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = execute(client, preview)
    assert response["Location"] == reverse("snapshots:restore_preview", args=[preview.pk])
    page = client.get(response["Location"]).text
    assert f"Preview #{preview.pk} expired at" in page and "Make a new preview." in page
    assert 'id="confirm-restore"' not in page
    assert not Job.objects.exists()


def test_a_preview_whose_pvs_were_edited_since_is_refused(client, operator, saved):
    client.force_login(operator)
    preview = make_preview(client, saved)
    PV.objects.filter(setpoint_address="R:A").update(abs_tolerance=1.0)
    page = client.get(execute(client, preview)["Location"]).text
    assert f"The registry entries of PVs in preview #{preview.pk} were edited or deleted since it was made" in page
    assert not Job.objects.exists()


def test_restore_page_shows_the_per_pv_results_and_undo(client, operator, restored, django_assert_max_num_queries):
    with django_assert_max_num_queries(13):  # with the stage legend's
        response = client.get(reverse("snapshots:restore", args=[restored.pk]))
    page = response.text
    results = {row["item"].pv_name: row["item"].status for row in response.context["rows"]}
    assert results == {"R:A": "verified", "R:B": "no_write_access"}
    assert "Problems (1)" in page and "Verified: <strong>1</strong>" in page
    assert 'id="undo"' in page and "data-job-id" not in page
    problems = client.get(reverse("snapshots:restore", args=[restored.pk]), {"status": "problems"})
    assert [row["item"].pv_name for row in problems.context["rows"]] == ["R:B"]
    verified = next(row for row in response.context["rows"] if row["item"].pv_name == "R:A")
    assert (verified["target"], verified["readback"], verified["delta"]) == ("1", "1", "0")
    assert "<dt>Stages</dt>" in page


def test_undo_makes_a_preview_of_the_values_from_before(client, operator, restored, live_values):
    live_values({"R:A": 1.0, "R:B": 3.0})
    response = client.post(reverse("snapshots:restore_undo", args=[restored.pk]))
    undo = RestorePreview.objects.latest("id")
    assert response["Location"] == reverse("snapshots:restore_preview", args=[undo.pk])
    assert undo.snapshot == restored.undo_snapshot
    assert actions(undo)["R:A"] == RestoreAction.WRITE


def test_a_viewer_sees_results_but_may_not_undo(client, viewer, restored):
    client.force_login(viewer)
    assert 'id="undo"' not in client.get(reverse("snapshots:restore", args=[restored.pk])).text
    assert client.post(reverse("snapshots:restore_undo", args=[restored.pk])).status_code == 403


def test_an_executed_preview_links_to_its_restore_and_cannot_run_again(client, operator, restored):
    page = client.get(reverse("snapshots:restore_preview", args=[restored.preview_id])).text
    assert reverse("snapshots:restore", args=[restored.pk]) in page and 'id="confirm-restore"' not in page
    page = client.get(execute(client, restored.preview)["Location"]).text
    assert "This preview was executed" in page and 'id="confirm-restore"' not in page
    assert not Job.objects.exists()


def test_restore_pages_need_a_login(client, restored):
    client.logout()
    for url in (
        reverse("snapshots:restore", args=[restored.pk]),
        reverse("snapshots:restore_preview", args=[restored.preview_id]),
    ):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_a_preview_the_cache_cannot_serve_is_made_by_a_worker_and_followed(
    client, operator, saved, redis_db, django_capture_on_commit_callbacks
):
    redis_db.delete(*redis_db.keys("squirrel:monitor:*"))  # the monitor's heartbeat is gone: stale
    client.force_login(operator)
    with django_capture_on_commit_callbacks() as callbacks:
        checked = PV.objects.get(setpoint_address="R:A").pk
        response = preview_of(client, saved, scope="checked", pv=[checked])
    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("jobs:detail", args=[job.pk])
    assert (job.type, job.data) == (
        JobType.PREVIEW,
        {"snapshot": saved.pk, "selection": None, "pv_ids": [checked], "include_unchanged": False},
    )
    assert len(callbacks) == 1 and not RestorePreview.objects.exists()
    # When the worker is done, the job page opens the preview.
    preview = RestorePreview.objects.create(
        snapshot=saved,
        created_by=operator,
        expires_at=timezone.now() + timedelta(minutes=5),
        live_source="direct",
        registry_fingerprint="",
    )
    Job.objects.filter(pk=job.pk).update(status="succeeded", result_id=preview.pk)
    followed = client.get(reverse("jobs:detail", args=[job.pk]))
    assert followed.status_code == 302 and followed["Location"] == reverse(
        "snapshots:restore_preview", args=[preview.pk]
    )
