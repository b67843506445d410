"""Revoke API tokens: one by its key (as the admin lists it), or every token of a user."""

from django.core.management.base import BaseCommand, CommandError

from squirrel_site.audit import AuditVia
from squirrel_site.tokens import KEY_LENGTH, TokenError, revoke_tokens, tokens_with_key, user_tokens


class Command(BaseCommand):
    help = "Revoke an API token by its key (its first characters, as the admin lists them) or all of a user's."

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("key", nargs="?", help=f"the token's first {KEY_LENGTH} characters (or the whole token)")
        which.add_argument("--all-for", metavar="USERNAME", help="revoke every token of this user")

    def handle(self, *args, key, all_for, **options):
        try:
            tokens = tokens_with_key(key) if key else user_tokens(all_for)
        except TokenError as exc:
            raise CommandError(str(exc)) from None
        revoked = revoke_tokens(tokens, actor=None, via=AuditVia.COMMAND)
        if key and not revoked:
            raise CommandError(f"No token has the key {key[:KEY_LENGTH]!r}.")
        self.stdout.write(f"Revoked {revoked} token{'s' if revoked != 1 else ''}.")
