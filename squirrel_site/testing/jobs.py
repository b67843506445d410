"""Jobs and the advisory locks their runner holds in PostgreSQL."""


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
