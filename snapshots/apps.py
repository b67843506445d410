from django.apps import AppConfig


class SnapshotsConfig(AppConfig):
    name = "snapshots"
    verbose_name = "Snapshots"

    def ready(self):
        """Register the snapshot app's job types with the jobs app, which imports no app, and its
        Celery tasks (Celery's autodiscovery looks for a `tasks` module at the top of each app only)."""
        import snapshots.capture.tasks  # noqa: F401 - registers the tasks
        from jobs.registry import register
        from snapshots.capture.runners import RUNNERS

        for runner in RUNNERS:
            register(runner)
