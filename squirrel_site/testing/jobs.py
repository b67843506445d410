"""Jobs: waiting for one through the API, and the advisory locks their runner holds in PostgreSQL."""


def close_and_wait_for_release(other, job_id: int, timeout: float = 5.0) -> None:
    """Close `other` (a worker dying) and wait until the server has released its advisory lock."""
    from django.db import connection

    from jobs.runner import _LOCK_NAMESPACE
    from squirrel_site.testing import eventually

    other.close()
    with connection.cursor() as cursor:

        def released() -> bool:
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s AND objid = %s",
                [_LOCK_NAMESPACE, job_id],
            )
            return not cursor.fetchone()[0]

        eventually(released, timeout, interval=0.01, what="the closed session's lock released")


def wait_for_job(api, job_id: int, timeout: float = 60.0) -> dict:
    """The job as `GET /api/v1/jobs/<id>/` gives it (`api`: a logged-in test client), once finished."""
    from squirrel_site.testing import eventually

    def finished() -> dict:
        job = api.get(f"/api/v1/jobs/{job_id}/").json()
        assert job["status"] in ("succeeded", "failed", "expired"), job
        return job

    return eventually(finished, timeout, what=f"job {job_id} finishing")
