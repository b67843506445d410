"""The snapshot list: search, take a snapshot (the snapshot page: restore/tests/test_snapshot_page.py)."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from jobs.models import Job, JobType
from pvs.models import PV, PVSet
from pvs.pv_sets import save_pv_set
from snapshots.models import GOLDEN_TAG, Snapshot, SnapshotMode, SnapshotTag
from squirrel_site.audit import AuditVia
from tags.models import Tag, TagGroup

pytestmark = pytest.mark.django_db


# The snapshot list -------------------------------------------------------------------------------


@pytest.fixture
def archive(admin_user, viewer):
    """Three snapshots by two authors; the oldest is golden and tagged "weekly"."""
    golden = SnapshotTag.objects.get(name=GOLDEN_TAG)
    weekly = SnapshotTag.objects.create(name="weekly")
    old = Snapshot.objects.create(
        title="Injector tuned", comment="after the long shutdown", created_by=admin_user, mode=SnapshotMode.DIRECT
    )
    old.tags.set([golden, weekly])
    Snapshot.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))
    Snapshot.objects.create(title="Before MD", created_by=viewer, mode=SnapshotMode.CACHE)
    Snapshot.objects.create(
        title="After MD", comment="beam lost at 3 am", created_by=admin_user, mode=SnapshotMode.HYBRID
    )
    return old


def titles(response) -> list[str]:
    return [snapshot.title for snapshot, _golden in response.context["snapshots"]]


def test_snapshot_list_needs_a_login(client):
    response = client.get(reverse("snapshots:list"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_snapshot_list_shows_newest_first_and_marks_the_golden_one(
    client, viewer, archive, django_assert_max_num_queries
):
    client.force_login(viewer)
    with django_assert_max_num_queries(8):
        response = client.get(reverse("snapshots:list"))
    assert titles(response) == ["After MD", "Before MD", "Injector tuned"]
    assert response.text.count("★ golden") == 1
    assert reverse("snapshots:detail", args=[archive.pk]) in response.text


@pytest.mark.parametrize(
    "query, expected",
    [
        ({"search": "md"}, ["After MD", "Before MD"]),
        ({"search": "3 am"}, ["After MD"]),
        ({"author": "VIEWER"}, ["Before MD"]),
        ({"tag": GOLDEN_TAG}, ["Injector tuned"]),
        ({"date_to": (timezone.localdate() - timedelta(days=5)).isoformat()}, ["Injector tuned"]),
        ({"date_from": timezone.localdate().isoformat()}, ["After MD", "Before MD"]),
        ({"origin": "manual", "search": "injector"}, ["Injector tuned"]),
    ],
)
def test_snapshot_list_searches(client, viewer, archive, query, expected):
    client.force_login(viewer)
    assert titles(client.get(reverse("snapshots:list"), query)) == expected


@pytest.fixture
def undo_points(archive, admin_user):
    """Two automatic undo points, newer than the archive's snapshots."""
    return [
        Snapshot.objects.create(
            title=f"Before restore #{n}", created_by=admin_user, mode=SnapshotMode.HYBRID, origin="pre_restore"
        )
        for n in (1, 2)
    ]


def test_the_list_hides_automatic_undo_points_unless_asked(client, viewer, undo_points):
    client.force_login(viewer)
    url = reverse("snapshots:list")
    response = client.get(url)
    assert titles(response) == ["After MD", "Before MD", "Injector tuned"]
    assert "2 automatic undo points (taken before each restore) hidden" in response.text
    assert 'href="?undo_points=on">show them</a>' in response.text
    shown = client.get(url, {"undo_points": "on"})
    assert titles(shown) == ["Before restore #2", "Before restore #1", "After MD", "Before MD", "Injector tuned"]
    assert 'id="hidden-undo-points"' not in shown.text
    # Choosing the undo-point origin shows them without the switch; other filters count what they hide.
    assert titles(client.get(url, {"origin": "pre_restore"})) == ["Before restore #2", "Before restore #1"]
    assert "1 automatic undo point (taken before each restore) hidden" in client.get(url, {"search": "#1"}).text
    assert 'id="hidden-undo-points"' not in client.get(url, {"search": "MD"}).text


@pytest.mark.parametrize(
    "origin, expected",
    [("manual", ["After MD", "Before MD", "Injector tuned"]), ("imported", ["Imported"]), ("scheduled", [])],
)
def test_the_list_filters_by_origin(client, viewer, undo_points, admin_user, origin, expected):
    Snapshot.objects.create(title="Imported", created_by=admin_user, mode=SnapshotMode.CACHE, origin="imported")
    client.force_login(viewer)
    assert titles(client.get(reverse("snapshots:list"), {"origin": origin, "undo_points": "on"})) == expected


def test_a_bad_date_or_unknown_tag_is_a_form_error_not_a_crash(client, viewer, archive):
    client.force_login(viewer)
    response = client.get(reverse("snapshots:list"), {"date_from": "yesterday", "tag": "nope"})
    assert response.status_code == 200
    assert "Enter a day, YYYY-MM-DD, or a day and a 24-hour time, YYYY-MM-DD HH:MM" in response.text
    assert "Select a valid choice" in response.text
    assert titles(response) == []


def test_snapshot_list_is_paged(client, viewer):
    client.force_login(viewer)
    Snapshot.objects.bulk_create(
        [Snapshot(title=f"S{i:03}", created_by=viewer, mode=SnapshotMode.CACHE) for i in range(60)]
    )
    first = client.get(reverse("snapshots:list"))
    assert len(titles(first)) == 50 and "Page 1 of 2" in first.text
    second = client.get(reverse("snapshots:list"), {"page": 2})
    assert len(titles(second)) == 10


# Taking a snapshot from the list ------------------------------------------------------------------


def test_the_take_form_is_offered_only_to_users_who_may_take_snapshots(client, viewer, operator):
    client.force_login(viewer)
    assert 'id="take-snapshot"' not in client.get(reverse("snapshots:list")).text
    client.force_login(operator)
    assert 'id="take-snapshot"' in client.get(reverse("snapshots:list")).text


def test_a_viewer_cannot_take_a_snapshot(client, viewer):
    client.force_login(viewer)
    PV.objects.create(setpoint_address="T:A")
    assert client.post(reverse("snapshots:list"), {"take-title": "t", "take-mode": "cache"}).status_code == 403
    assert not Job.objects.exists()


def test_taking_a_snapshot_enqueues_the_job_and_follows_it(client, operator, django_capture_on_commit_callbacks):
    client.force_login(operator)
    group = TagGroup.objects.create(name="Area")
    tag = Tag.objects.create(group=group, name="LI20")
    PV.objects.create(setpoint_address="T:A", device="QUAD").tags.add(tag)
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            reverse("snapshots:list"),
            {
                "take-title": "Before tuning",
                "take-comment": "why",
                "take-mode": "direct",
                "take-tag": [tag.pk],
                "take-device": "QU",
            },
        )
    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("jobs:detail", args=[job.pk])
    assert (job.type, job.created_by) == (JobType.SNAPSHOT, operator)
    assert job.data == {
        "title": "Before tuning",
        "comment": "why",
        "mode": "direct",
        "tags": [],
        "selection": {"tag": [tag.pk], "device": "QU"},
    }
    assert len(callbacks) == 1


@pytest.mark.parametrize(
    "post, error",
    [
        ({"take-title": "", "take-mode": "cache"}, "This field is required."),
        ({"take-title": "t", "take-mode": "fast"}, "Select a valid choice. fast is not one of the available choices."),
        ({"take-title": "t", "take-mode": "cache", "take-device": "NOTHING"}, "No PV matches this selection."),
        ({"take-title": "t", "take-mode": "cache", "take-tag": ["x"]}, "“x” is not a valid value."),
    ],
)
def test_bad_snapshot_parameters_are_readable_form_errors(client, operator, post, error):
    client.force_login(operator)
    PV.objects.create(setpoint_address="T:A")
    response = client.post(reverse("snapshots:list"), post)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not Job.objects.exists()


def test_only_administrators_may_take_a_golden_snapshot(client, operator, admin_role_user):
    SnapshotTag.objects.get(name=GOLDEN_TAG)
    PV.objects.create(setpoint_address="T:A")
    client.force_login(operator)
    response = client.post(
        reverse("snapshots:list"), {"take-title": "t", "take-mode": "cache", "take-tags": [GOLDEN_TAG]}
    )
    assert response.status_code == 400 and not Job.objects.exists()
    client.force_login(admin_role_user)
    golden = SnapshotTag.objects.get(name=GOLDEN_TAG)
    response = client.post(
        reverse("snapshots:list"), {"take-title": "t", "take-mode": "cache", "take-tags": [golden.pk]}
    )
    assert response.status_code == 302 and Job.objects.get().data["tags"] == [GOLDEN_TAG]


def test_taking_a_snapshot_of_a_saved_pv_set(client, operator):
    PV.objects.create(setpoint_address="T:A", device="QUAD")
    PV.objects.create(setpoint_address="T:B")
    pv_set = save_pv_set(PVSet(name="Quads", filters={"device": "QUAD"}), actor=None, via=AuditVia.PAGE)
    client.force_login(operator)
    form = client.get(reverse("snapshots:list")).text
    # Two distinct questions, two distinct labels: the snapshot's own tags, and which PVs it saves.
    assert "Label the snapshot" in form and "PVs with all these PV tags" in form
    assert f'<option value="{pv_set.pk}">Quads</option>' in form
    response = client.post(
        reverse("snapshots:list"), {"take-title": "Quads", "take-mode": "cache", "take-pv_set": pv_set.pk}
    )
    assert response.status_code == 302
    assert Job.objects.get().data["selection"] == {"pv_set": pv_set.pk}


@pytest.mark.parametrize("value, error", [("999999", "Select a valid choice"), ("x", "Select a valid choice")])
def test_an_unknown_pv_set_is_a_form_error(client, operator, value, error):
    PV.objects.create(setpoint_address="T:A")
    client.force_login(operator)
    response = client.post(reverse("snapshots:list"), {"take-title": "t", "take-mode": "cache", "take-pv_set": value})
    assert response.status_code == 400 and error in response.text and not Job.objects.exists()


def test_a_pv_set_selecting_nothing_more_is_refused(client, operator):
    PV.objects.create(setpoint_address="T:A", device="QUAD")
    pv_set = save_pv_set(PVSet(name="Quads", filters={"device": "QUAD"}), actor=None, via=AuditVia.PAGE)
    client.force_login(operator)
    post = {"take-title": "t", "take-mode": "cache", "take-pv_set": pv_set.pk, "take-device": "RF"}
    response = client.post(reverse("snapshots:list"), post)
    assert response.status_code == 400 and "No PV matches this selection." in response.text


# Importing a save file ---------------------------------------------------------------------------

SAV = b"# save/restore V5.10\tAutomatically generated - DO NOT MODIFY - 261207-231500\nT:A 1.5\nOLD:B 2\n<END>\n"


def upload(name: str, content: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, content, content_type="application/octet-stream")


def test_the_import_panel_is_offered_only_to_users_who_may_take_snapshots(client, viewer, operator):
    client.force_login(viewer)
    assert b'id="import-snapshot"' not in client.get(reverse("snapshots:list")).content
    client.force_login(operator)
    assert b'id="import-snapshot"' in client.get(reverse("snapshots:list")).content


def test_a_viewer_cannot_import(client, viewer):
    client.force_login(viewer)
    response = client.post(reverse("snapshots:import"), {"import-file": upload("a.sav", SAV)})
    assert response.status_code == 403 and not Snapshot.objects.exists()


def test_an_imported_save_file_leads_to_its_snapshot_with_its_unknown_pvs_counted(client, operator):
    PV.objects.create(setpoint_address="T:A")
    client.force_login(operator)

    response = client.post(
        reverse("snapshots:import"),
        {"import-file": upload("ioc.sav", SAV), "import-title": "IOC at 23:15"},
        follow=True,
    )

    snapshot = Snapshot.objects.get()
    assert (snapshot.title, snapshot.origin, snapshot.pv_count) == ("IOC at 23:15", "imported", 2)
    assert response.redirect_chain == [(reverse("snapshots:list"), 302)]
    message = str(next(iter(response.context["messages"])))
    assert message == (
        f'Imported 2 values as snapshot <a href="{reverse("snapshots:detail", args=[snapshot.pk])}">“IOC at 23:15”</a>:'
        " 1 unknown PV (OLD:B), kept without a registry PV."
    )


def test_a_broken_save_file_is_a_form_error_with_each_line_and_stores_nothing(client, operator):
    client.force_login(operator)
    content = SAV.replace(b"<END>\n", b"") + b"T:C 1e400\n"

    response = client.post(reverse("snapshots:import"), {"import-file": upload("cut.sav", content)})

    assert response.status_code == 400 and not Snapshot.objects.exists()
    errors = response.context["import_form"].errors["file"]
    assert errors == [
        "cut.sav:4: The file does not end with <END>: it was cut short while written (autosave refuses it too)."
    ]
    assert (
        b"cut.sav:4: The file does not end with" in response.content
        and b'id="import-snapshot" open' in response.content
    )


def test_a_file_of_another_type_is_refused(client, operator):
    client.force_login(operator)
    response = client.post(reverse("snapshots:import"), {"import-file": upload("notes.txt", b"hello")})
    assert response.status_code == 400
    assert response.context["import_form"].errors["file"] == [
        "notes.txt: Unknown file type '.txt': use .json, .csv, .sav, .snap."
    ]


def test_an_import_over_the_upload_limit_is_413(client, operator, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    client.force_login(operator)
    response = client.post(reverse("snapshots:import"), {"import-file": upload("big.sav", SAV + b"#" * 2000)})
    assert response.status_code == 413 and not Snapshot.objects.exists()
