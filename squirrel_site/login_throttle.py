"""Login throttling with django-axes: whose failures count, the lockout page, and the audit entry.

Axes counts failed logins per user name and client address (settings: AXES_*); at the limit that
pair is locked out for the cool-off. These are the project's three hooks into it.
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpResponse
from django.shortcuts import render

from squirrel_site.audit import AuditAction, AuditVia, record


def client_ip_address(request) -> str:
    """The client address failures are counted for (AXES_CLIENT_IP_CALLABLE).

    Behind the TLS proxy (SQUIRREL_BEHIND_TLS_PROXY) it is the last X-Forwarded-For entry, the one
    the proxy appended; entries before it come from the client and can be anything.
    """
    if settings.BEHIND_TLS_PROXY:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").rsplit(",", 1)[-1].strip()
        if forwarded:
            return forwarded
    return request.META.get("REMOTE_ADDR", "")


def cooloff_minutes() -> int:
    """The cool-off in whole minutes (settings.AXES_COOLOFF_TIME, from SQUIRREL_LOGIN_COOLOFF_MINUTES)."""
    return int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)


def lockout_response(request, original_response, credentials) -> HttpResponse:
    """The login page saying the login is locked, with 429 and Retry-After (AXES_LOCKOUT_CALLABLE).

    Also the answer of the admin's login form, whose users read the same page. Rendered here:
    middleware answers are not rendered later as a view's TemplateResponse is.
    """
    minutes = cooloff_minutes()
    response = render(
        request,
        "squirrel/login.html",
        {
            "form": AuthenticationForm(request),
            "next": request.POST.get("next", ""),
            "lockout_message": (
                f"Too many failed logins with this user name from this computer. Logging in is "
                f"blocked here for {minutes} minutes after the last attempt; an admin can unlock it sooner."
            ),
        },
        status=429,
    )
    response["Retry-After"] = str(minutes * 60)
    return response


def record_lockout(sender, request, username, ip_address, **kwargs) -> None:
    """user_locked_out receiver: an audit entry for the failure that reaches the limit.

    Axes sends the signal again for every refused attempt during the lockout (each one also
    restarts the cool-off); those are in axes' own log, not the audit log.
    """
    failures = getattr(request, "axes_failures_since_start", None)
    if failures != settings.AXES_FAILURE_LIMIT:
        return
    user = get_user_model().objects.filter(**{get_user_model().USERNAME_FIELD: username}).first()
    via = AuditVia.ADMIN if request.path.startswith("/admin/") else AuditVia.PAGE
    record(
        None,
        AuditAction.LOGIN_LOCKED_OUT,
        f"Logins as {username!r} from {ip_address} locked out after {failures} failures",
        via=via,
        target=user,
        details={
            "username": username,
            "ip_address": ip_address,
            "failures": failures,
            "cooloff_minutes": cooloff_minutes(),
        },
    )
