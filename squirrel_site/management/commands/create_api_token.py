"""Issue an API token for a script and print it, once, as the only line on stdout."""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from squirrel_site.audit import AuditVia
from squirrel_site.tokens import TokenError, create_token, user_named


class Command(BaseCommand):
    help = (
        "Create an API token for USERNAME and print it (only the token, on stdout, so "
        "TOKEN=$(manage.py create_api_token bob) works). It cannot be shown again."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--expires-in-days", type=int, help="days until the token stops working (default: never)")

    def handle(self, *args, username, expires_in_days, **options):
        if expires_in_days is not None and expires_in_days < 1:
            raise CommandError("--expires-in-days must be at least 1.")
        expires_in = timedelta(days=expires_in_days) if expires_in_days else None
        try:
            _, secret = create_token(user_named(username), actor=None, via=AuditVia.COMMAND, expires_in=expires_in)
        except TokenError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(secret)
