"""A registry file that passed the admin import's check, kept for its "Import" button so the
curator need not choose the same file again.

The upload travels back with the page as a signed, compressed token (django.core.signing, salted
with the user's id, valid for CHECKED_UPLOAD_MAX_AGE): nothing is stored on the server, any web
process can import it, and nobody can alter it or import another user's check. The import view
takes up to SQUIRREL_MAX_UPLOAD_BYTES (squirrel_site/request_limits.py), so the file that was sent
once fits when it comes back.
"""

from dataclasses import dataclass

from django.core import signing

# An hour: a check is followed by its import within minutes; a stale one is checked again.
CHECKED_UPLOAD_MAX_AGE = 3600
_SALT = "pvs.admin.checked-import"


class CheckedUploadError(Exception):
    """The token is not one this site signed for this user, or it is too old."""


@dataclass(frozen=True)
class CheckedUpload:
    name: str
    content: bytes
    includes: dict[str, bytes]
    macros: dict[str, str]


def _text(content: bytes) -> str:
    return content.decode("latin-1")  # every byte as one character: lossless, and compact in JSON


def sign(upload: CheckedUpload, user) -> str:
    """The token of `upload`, for `user` only."""
    payload = {
        "name": upload.name,
        "content": _text(upload.content),
        "includes": {name: _text(content) for name, content in upload.includes.items()},
        "macros": upload.macros,
    }
    return signing.dumps(payload, salt=f"{_SALT}:{user.pk}", compress=True)


def unsign(token: str, user) -> CheckedUpload:
    """The upload `token` holds; CheckedUploadError if it was altered, is another user's or expired."""
    try:
        payload = signing.loads(token, salt=f"{_SALT}:{user.pk}", max_age=CHECKED_UPLOAD_MAX_AGE)
    except signing.SignatureExpired:
        raise CheckedUploadError("The check is over an hour old: choose the file and check it again.") from None
    except signing.BadSignature:
        raise CheckedUploadError("The checked file could not be read back: choose it and check it again.") from None
    return CheckedUpload(
        name=payload["name"],
        content=payload["content"].encode("latin-1"),
        includes={name: content.encode("latin-1") for name, content in payload["includes"].items()},
        macros=payload["macros"],
    )
