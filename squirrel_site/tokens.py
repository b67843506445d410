"""API tokens for scripts: issuing and revoking them, each recorded in the audit log.

The management commands (create_api_token, revoke_api_token) and the admin call these two verbs;
nothing else creates or deletes tokens. Knox stores only a digest of each token and its first
characters (`token_key`, e.g. "sqt_Ab3dE6gH9jK"), which is how people and commands name a token.

Tokens have no name of their own: give each script its own account (e.g. "svc-drift-report" with
the viewer role), so the token's user says what it is for and the audit log names the script.
"""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from knox.models import AuthToken
from knox.settings import CONSTANTS

from squirrel_site import audit

KEY_LENGTH = CONSTANTS.TOKEN_KEY_LENGTH


class TokenError(Exception):
    """A token cannot be issued or found; the message is meant for the user."""


def user_named(username: str):
    """The user named `username`, or TokenError."""
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise TokenError(f"There is no user {username!r}.")
    return user


def create_token(user, *, actor, via: str, expires_in: timedelta | None = None) -> tuple[AuthToken, str]:
    """Issue a token for `user`: (the stored token, the secret to hand over once; it is not kept).

    `expires_in` None: the token works until it is revoked or its user is deactivated.
    """
    if not user.is_active:
        raise TokenError(f"User {user.get_username()!r} is inactive: an inactive user's tokens are refused.")
    with transaction.atomic():
        token, secret = AuthToken.objects.create(user=user, expiry=expires_in)
        audit.record(
            actor,
            audit.AuditAction.TOKEN_CREATED,
            f"API token {_label(token)} issued",
            via=via,
            target=user,
            details={"token_key": token.token_key, "expiry": token.expiry.isoformat() if token.expiry else None},
        )
    return token, secret


def revoke_tokens(tokens, *, actor, via: str) -> int:
    """Delete the tokens in the queryset `tokens` (they stop working at once); how many there were."""
    with transaction.atomic():
        doomed = list(tokens.select_related("user").select_for_update(of=("self",)))
        for token in doomed:
            audit.record(
                actor,
                audit.AuditAction.TOKEN_REVOKED,
                f"API token {_label(token)} revoked",
                via=via,
                target=token.user,
                details={"token_key": token.token_key},
            )
        AuthToken.objects.filter(pk__in=[token.pk for token in doomed]).delete()
    return len(doomed)


def tokens_with_key(key: str):
    """The tokens a key names: the first KEY_LENGTH characters of a token, so the whole token works too."""
    if len(key) < KEY_LENGTH:
        raise TokenError(f"A token key has {KEY_LENGTH} characters (as the admin lists them), not {len(key)}.")
    return AuthToken.objects.filter(token_key=key[:KEY_LENGTH])


def user_tokens(username: str):
    """Every token of the user named `username` (active or not)."""
    return AuthToken.objects.filter(user=user_named(username))


def _label(token: AuthToken) -> str:
    return f"{token.token_key}… of {token.user.get_username()}"
