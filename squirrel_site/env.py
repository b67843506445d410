"""Typed helpers that read settings from environment variables and fail loudly.

A missing or bad value raises `SettingError`: the process stops with one line naming the variable
and what to do, and exit status 1, whichever entry point loaded the settings (manage.py, the web
server, Celery). No traceback: the fault is in the environment, not in the code.
"""

import math
import os


class SettingError(SystemExit):
    """A setting the process cannot start with; stops it with one line on stderr and status 1.

    A SystemExit rather than Django's ImproperlyConfigured: the settings load inside Django, daphne
    and Celery, and each would print the exception's traceback; a SystemExit carrying a message
    ends the interpreter with the message alone, and nothing on the way catches it.
    """

    def __init__(self, message: str):
        super().__init__(f"error: {message}")
        self.message = message


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None, *, hint: str = "") -> str:
    """Return the variable as a string; raise if it is unset and has no default (`hint`: what to set)."""
    value = os.environ.get(name)
    if value is None:
        if default is None:
            raise SettingError(f"Set the environment variable {name}{f': {hint}' if hint else '.'}")
        return default
    return value


def env_bool(name: str, default: bool) -> bool:
    """Return the variable as a boolean (1/0, true/false, yes/no, on/off)."""
    value = os.environ.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise SettingError(
        f"{name} must be a boolean (1/0, true/false), not {value!r}: set it to 1 or 0, or unset it "
        f"for the default ({int(default)})."
    )


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    """Return the variable as an integer, at least `minimum` when one is given."""
    value = os.environ.get(name)
    if value is None:
        return default
    at_least = "" if minimum is None else f" from {minimum}"
    fix = f"set it to a whole number{at_least}, or unset it for the default ({default})."
    try:
        result = int(value)
    except ValueError:
        raise SettingError(f"{name} must be an integer, not {value!r}: {fix}") from None
    if minimum is not None and result < minimum:
        raise SettingError(f"{name} must be at least {minimum}, not {value!r}: {fix}")
    return result


def env_float(name: str, default: float) -> float:
    """Return the variable as a finite float."""
    value = os.environ.get(name)
    if value is None:
        return default
    fix = f"set it to a number, or unset it for the default ({default:g})."
    try:
        result = float(value)
    except ValueError:
        raise SettingError(f"{name} must be a number, not {value!r}: {fix}") from None
    if not math.isfinite(result):
        raise SettingError(f"{name} must be a finite number, not {value!r}: {fix}")
    return result


def env_list(name: str, default: list[str]) -> list[str]:
    """Return the variable as a comma-separated list with blanks dropped."""
    value = os.environ.get(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_named_urls(name: str) -> list[tuple[str, str]]:
    """Return the variable as (name, URL) pairs: comma-separated ``name=http://host:port`` items,
    or bare URLs named by their host:port; an http(s) URL each, names unique. Unset or blank: []."""
    from urllib.parse import urlsplit

    pairs: list[tuple[str, str]] = []
    for item in env_list(name, []):
        label, _, url = item.partition("=") if "=" in item.split("://", 1)[0] else ("", "", item)
        url = url.strip().rstrip("/")
        fix = f"set {name} to comma-separated http://host:port URLs, each optionally named (name=http://host:port)."
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a port out of range
        except ValueError:
            raise SettingError(f"{name} holds {item!r}, which is not a URL: {fix}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise SettingError(f"{name} holds {item!r}, which is not an http(s) URL: {fix}")
        label = label.strip() or parts.netloc
        if any(label == seen for seen, _ in pairs):
            raise SettingError(f"{name} names {label!r} twice: {fix}")
        pairs.append((label, url))
    return pairs
