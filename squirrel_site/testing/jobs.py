"""Jobs and the advisory locks their runner holds in PostgreSQL."""


def close_and_wait_for_release(other, job_id: int, timeout: float = 5.0) -> None:
    """Close `other` (a worker dying) and wait until the server has released its advisory lock."""
    import time

    from django.db import connection

    from jobs.runner import _LOCK_NAMESPACE

    other.close()
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while True:
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s AND objid = %s",
                [_LOCK_NAMESPACE, job_id],
            )
            if not cursor.fetchone()[0]:
                return
            assert time.monotonic() < deadline, "the closed session's lock was not released"
            time.sleep(0.01)
