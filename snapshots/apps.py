from django.apps import AppConfig


class SnapshotsConfig(AppConfig):
    name = "snapshots"
    verbose_name = "Snapshots"

    def ready(self):
        """Register the packages' job types with the jobs app, which imports no app, and their Celery
        tasks (Celery's autodiscovery looks for a `tasks` module at the top of each app only)."""
        import snapshots.capture.tasks
        import snapshots.restore.tasks  # noqa: F401 - the tasks register themselves with Celery
        from jobs.registry import register
        from snapshots.capture.runners import RUNNERS as CAPTURE_RUNNERS
        from snapshots.restore.runners import RUNNERS as RESTORE_RUNNERS

        for runner in CAPTURE_RUNNERS + RESTORE_RUNNERS:
            register(runner)
