"""Snapshots, their tags and schedules in the admin: browse and label; values are immutable once
written."""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from pvs.selections import selection_problems
from snapshots.capture.actions import delete_snapshots, edit_snapshot
from snapshots.capture.models import MANAGE_PROTECTED_TAGS, SET_SCHEDULE_OWNER, Snapshot, SnapshotSchedule, SnapshotTag
from snapshots.capture.schedules import delete_schedule, save_schedule
from snapshots.capture.services import protected_tags_refusal
from squirrel_site.admin_base import ModelAdmin
from squirrel_site.audit import AuditVia
from squirrel_site.paginators import EstimatedCountPaginator


@admin.register(SnapshotTag)
class SnapshotTagAdmin(admin.ModelAdmin):
    """Snapshot tags; protected ones (golden) are edited and deleted by administrators only."""

    list_display = ["name", "protected", "description"]
    search_fields = ["name"]

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.protected and not request.user.has_perm(MANAGE_PROTECTED_TAGS):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.protected and not request.user.has_perm(MANAGE_PROTECTED_TAGS):
            return False
        return super().has_delete_permission(request, obj)

    def get_readonly_fields(self, request, obj=None):
        # Only administrators may make a tag protected (or not).
        return [] if request.user.has_perm(MANAGE_PROTECTED_TAGS) else ["protected"]


class SnapshotAdminForm(forms.ModelForm):
    """Refuses changes to protected tags (golden) unless the user is an administrator."""

    user = None

    class Meta:
        model = Snapshot
        fields = ["title", "comment", "tags"]

    def clean_tags(self):
        tags = self.cleaned_data["tags"]
        refusal = protected_tags_refusal(self.user, self.instance.tags.all(), tags)
        if refusal:
            raise ValidationError(refusal)
        return tags


@admin.register(Snapshot)
class SnapshotAdmin(ModelAdmin):
    """Browse snapshots; edit their title, comment and tags, or delete them (snapshots.capture.actions,
    which records each change in the audit log)."""

    form = SnapshotAdminForm
    list_display = [
        "title",
        "created_at",
        "created_by",
        "mode",
        "archived_at",
        "origin",
        "pv_count",
        "disconnected_count",
    ]
    list_filter = ["mode", "origin", "tags", "created_at"]
    search_fields = ["title", "comment", "created_by__username"]
    date_hierarchy = "created_at"
    readonly_fields = ["created_by", "created_at", "mode", "archived_at", "origin", "pv_count", "disconnected_count"]
    fields = ["title", "comment", "tags", *readonly_fields]
    filter_horizontal = ["tags"]
    list_select_related = ["created_by"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.user = request.user
        return form

    def has_add_permission(self, request) -> bool:
        # Snapshots come from a job (take or import), never from a blank form.
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        protected = obj is not None and obj.tags.filter(protected=True).exists()
        if protected and not request.user.has_perm(MANAGE_PROTECTED_TAGS):
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        edit_snapshot(
            obj, user=request.user, via=AuditVia.ADMIN, title=data["title"], comment=data["comment"], tags=data["tags"]
        )

    def save_related(self, request, form, formsets, change):
        """edit_snapshot set the tags already (the only related objects)."""

    def delete_model(self, request, obj):
        delete_snapshots(Snapshot.objects.filter(pk=obj.pk), user=request.user, via=AuditVia.ADMIN)

    def delete_queryset(self, request, queryset):
        delete_snapshots(queryset, user=request.user, via=AuditVia.ADMIN)


class SnapshotScheduleForm(forms.ModelForm):
    """A schedule's PVs are a saved PV set chosen from a list, never typed JSON. The filters a
    schedule kept from before PV sets are shown read-only, used while no set is chosen, and
    dropped once one is."""

    class Meta:
        model = SnapshotSchedule
        fields = ["name", "enabled", "crontab", "mode", "pv_set", "tags", "keep_last", "owner"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "pv_set" in self.fields:
            self.fields["pv_set"].empty_label = "every PV"

    def clean_pv_set(self):
        pv_set = self.cleaned_data["pv_set"]
        if pv_set is not None:
            problems = selection_problems({"pv_set": pv_set.pk})
            if problems:
                raise ValidationError(f"This PV set cannot be used: {problems}")
        return pv_set

    def save(self, commit=True):
        if self.cleaned_data.get("pv_set") is not None:
            self.instance.selection = {}
        return super().save(commit)


@admin.register(SnapshotSchedule)
class SnapshotScheduleAdmin(admin.ModelAdmin):
    """Scheduled snapshots; saving keeps the celery-beat task in step (snapshots.capture.schedules)."""

    form = SnapshotScheduleForm
    list_display = ["name", "enabled", "crontab", "mode", "pv_set", "keep_last", "owner"]
    list_filter = ["enabled", "mode"]
    list_select_related = ["crontab", "pv_set", "owner"]
    filter_horizontal = ["tags"]

    def get_readonly_fields(self, request, obj=None):
        # Filters kept from before PV sets: shown, never typed (a set replaces them).
        fields = ["selection"] if obj is not None and obj.selection else []
        # A schedule's snapshots are recorded as its owner's: only the admin role may name another.
        if request.user.has_perm(SET_SCHEDULE_OWNER):
            return fields
        return [*fields, "owner"]

    def save_model(self, request, obj, form, change):
        if not change and not request.user.has_perm(SET_SCHEDULE_OWNER):
            obj.owner = request.user
        save_schedule(obj, actor=request.user, via=AuditVia.ADMIN, changed=form.changed_data)

    def delete_model(self, request, obj):
        delete_schedule(obj, actor=request.user, via=AuditVia.ADMIN)

    def delete_queryset(self, request, queryset):
        for schedule in queryset:
            delete_schedule(schedule, actor=request.user, via=AuditVia.ADMIN)
