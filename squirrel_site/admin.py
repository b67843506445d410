"""The admin's API tokens (issue, list, revoke), the audit log (read-only, for the admin role), and
celery-beat's own tables kept out of the admin index."""

import json
from datetime import timedelta

from django import forms
from django.contrib import admin
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, IntervalSchedule, PeriodicTask, SolarSchedule
from knox.models import AuthToken

from squirrel_site.admin_base import ReadOnlyAdmin
from squirrel_site.audit import AuditAction, AuditVia
from squirrel_site.models import AuditEntry
from squirrel_site.paginators import EstimatedCountPaginator
from squirrel_site.tokens import create_token, revoke_tokens


class AuthTokenCreateForm(forms.ModelForm):
    """Who the token is for and for how long; the service makes the secret."""

    expires_in_days = forms.IntegerField(
        required=False, min_value=1, label="Expires in (days)", help_text="Empty: until it is revoked."
    )

    class Meta:
        model = AuthToken
        fields = ["user"]

    @property
    def expires_in(self) -> timedelta | None:
        days = self.cleaned_data.get("expires_in_days")
        return timedelta(days=days) if days else None


# celery-beat's tables are its bookkeeping: a snapshot schedule (snapshots.capture.schedules) writes
# its periodic task, so people edit schedules, never these. A schedule's crontab is still chosen and
# added from the schedule's form (its "+" needs the crontab admin), but not listed in the index.
admin.site.unregister([ClockedSchedule, IntervalSchedule, PeriodicTask, SolarSchedule])
_CrontabAdmin = type(admin.site.get_model_admin(CrontabSchedule))
admin.site.unregister(CrontabSchedule)


@admin.register(CrontabSchedule)
class CrontabScheduleAdmin(_CrontabAdmin):
    """celery-beat's crontab admin, reached only from a snapshot schedule's form."""

    def has_module_permission(self, request) -> bool:
        return False


# Replaces knox's own admin, which lists digests and shows a new token in a message (a cookie).
admin.site.unregister(AuthToken)


@admin.register(AuthToken)
class AuthTokenAdmin(admin.ModelAdmin):
    """Tokens are issued here (the secret is shown once, on the page after saving) and revoked by
    deleting them; they are never edited. The digest is knox's and is useless to people: the key
    (the token's first characters) is what names a token."""

    form = AuthTokenCreateForm
    list_display = ["token_key", "user", "created", "expiry", "expired"]
    list_filter = ["created"]
    search_fields = ["token_key", "user__username"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]
    fields = ["token_key", "user", "created", "expiry"]

    def get_fields(self, request, obj=None):
        # Existing tokens are shown read-only (no change permission): only the add form differs.
        return ["user", "expires_in_days"] if obj is None else self.fields

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            kwargs["limit_choices_to"] = {"is_active": True}
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(boolean=True)
    def expired(self, token) -> bool:
        return token.expiry is not None and token.expiry <= timezone.now()

    def save_form(self, request, form, change):
        # The service issues the token (with its audit entry); the admin then logs it as usual.
        token, secret = create_token(
            form.cleaned_data["user"], actor=request.user, via=AuditVia.ADMIN, expires_in=form.expires_in
        )
        token.secret = secret
        return token

    def save_model(self, request, obj, form, change):
        """Nothing left to save: save_form issued the token."""

    def save_related(self, request, form, formsets, change):
        """A token has no related objects (and the form was never saved itself)."""

    def response_add(self, request, obj, post_url_continue=None):
        # Shown on this response only, never stored (not even in a message cookie).
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "token": obj,
            "secret": obj.secret,
            "title": "API token created",
        }
        return TemplateResponse(request, "admin/knox/authtoken/created.html", context)

    def delete_model(self, request, obj):
        revoke_tokens(AuthToken.objects.filter(pk=obj.pk), actor=request.user, via=AuditVia.ADMIN)

    def delete_queryset(self, request, queryset):
        revoke_tokens(queryset, actor=request.user, via=AuditVia.ADMIN)


class ActionFilter(admin.SimpleListFilter):
    """The audit actions, listed from AuditAction (a DISTINCT over the log would read every row)."""

    title = "action"
    parameter_name = "action"

    def lookups(self, request, model_admin):
        actions = sorted(value for name, value in vars(AuditAction).items() if name.isupper())
        return [(action, action) for action in actions]

    def queryset(self, request, queryset):
        return queryset.filter(action=self.value()) if self.value() else queryset


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """The audit log: read-only for everyone; seen by those with view_auditentry (the admin role).

    Built for millions of rows: newest first by primary key, no full COUNT, filters that need no
    query to list their choices, the actor's name as stored (no join).
    """

    list_display = ["created_at", "actor_name", "action", "via", "target", "summary"]
    list_filter = [ActionFilter, "via", "created_at"]
    search_fields = ["^actor_name", "summary", "=target_id"]
    search_help_text = "An actor's name (its beginning), text of the summary, or a target's id."
    fields = [
        "created_at",
        "actor",
        "actor_name",
        "action",
        "via",
        "target_type",
        "target_id",
        "summary",
        "details_json",
    ]
    readonly_fields = fields
    paginator = EstimatedCountPaginator
    show_full_result_count = False

    @admin.display(description="Target", ordering="target_id")
    def target(self, entry) -> str:
        return f"{entry.target_type} #{entry.target_id}" if entry.target_type else "—"

    @admin.display(description="Details")
    def details_json(self, entry) -> str:
        return format_html("<pre>{}</pre>", json.dumps(entry.details, indent=2, ensure_ascii=False))
