"""The restore's bookkeeping writes on a second database connection, beside the puts."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from django.db import connection, connections


class Recorder:
    """The restore's bookkeeping writes (items, put results, verified read-backs), in order, on a second database
    connection while the puts go out: creating 42,500 items costs ~0.6 s and each stage's results
    ~0.1 s, which then overlap the Channel Access work instead of adding to it.

    Inline when the caller holds a transaction (tests): a second connection could not see its
    uncommitted rows. A write that fails is raised by the next check(); until then the restore
    stands as after a crash, which a resume repairs (snapshots.restore.plan.unfinished_plan).
    """

    def __init__(self):
        self._pool = None
        if not connection.in_atomic_block:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="restore-recorder")
        self._futures: list[Future] = []

    def submit(self, write: Callable, *args) -> Future:
        """Queue `write(*args)` after the writes before it; its future holds what it returned."""
        if self._pool is None:
            done: Future = Future()
            done.set_result(write(*args))
            return done
        future = self._pool.submit(self._write, write, *args)
        self._futures.append(future)
        return future

    @staticmethod
    def _write(write: Callable, *args):
        # The thread's own connection: after a failed write, the next one reconnects.
        connection.close_if_unusable_or_obsolete()
        return write(*args)

    def check(self, wait: bool = False) -> None:
        """Raise the first failed write so far; with `wait`, once every write has finished."""
        for future in self._futures:
            if wait or future.done():
                future.result()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc_info) -> None:
        # Writes already queued record puts that happened: they finish even when the runner failed.
        if self._pool is not None:
            self._pool.submit(connections.close_all)
            self._pool.shutdown(wait=True)
