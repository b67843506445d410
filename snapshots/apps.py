from django.apps import AppConfig


class SnapshotsConfig(AppConfig):
    name = "snapshots"
    verbose_name = "Snapshots"

    def ready(self):
        """Register the snapshot app's job types with the jobs app, which imports no app."""
        from jobs.registry import register
        from snapshots.job_runners import RUNNERS

        for runner in RUNNERS:
            register(runner)
