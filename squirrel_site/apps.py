from django.apps import AppConfig
from django.db.models.signals import post_migrate


class SquirrelSiteConfig(AppConfig):
    """Site-wide models and wiring: the audit log, the role groups and login throttling."""

    name = "squirrel_site"
    verbose_name = "Squirrel site"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from axes.signals import user_locked_out

        from squirrel_site.login_throttle import record_lockout
        from squirrel_site.roles import sync_roles_after_migrate

        # Sent for this app after every other app's permissions exist (it is installed last);
        # `flush` sends it too, so transactional tests get their groups back.
        post_migrate.connect(sync_roles_after_migrate, sender=self, dispatch_uid="squirrel-sync-roles")
        user_locked_out.connect(record_lockout, dispatch_uid="squirrel-audit-lockout")
