from django.urls import reverse

from jobs.models import Job, JobType


def test_job_list_is_read_only(client, admin_user):
    job = Job.objects.create(type=JobType.RESTORE, created_by=admin_user)
    client.force_login(admin_user)
    assert client.get(reverse("admin:jobs_job_changelist")).status_code == 200
    page = client.get(reverse("admin:jobs_job_change", args=[job.id]))
    assert page.status_code == 200 and b'name="_save"' not in page.content
