"""The PV registry's curation UI: search, filters, bulk actions, import and export."""

import io

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from pvs import checked_uploads, pv_sets, services
from pvs.exporters import export_pvs_csv
from pvs.filtersets import InvalidPVSet, pv_set_condition
from pvs.forms import PVSetChoiceForm, PVSetForm, RegistryImportForm, TagChoiceForm, ToleranceForm
from pvs.importers import uploaded_include_loader
from pvs.models import PV, SEARCH_FIELDS, PVSet
from pvs.protocols import CHOICES, PROTOCOLS, search_of
from pvs.selections import pv_set_pvs
from squirrel_site.audit import AuditVia
from squirrel_site.paginators import EstimatedCountPaginator
from tags.models import Tag, TagGroup


class TagGroupFilter(admin.SimpleListFilter):
    """PVs carrying any tag of one tag group."""

    title = "tag group"
    parameter_name = "tag_group"

    def lookups(self, request, model_admin):
        return [(str(group.id), group.name) for group in TagGroup.objects.all()]

    def queryset(self, request, queryset):
        return queryset.in_tag_group(self.value()) if self.value() else queryset


class TagFilter(admin.SimpleListFilter):
    """PVs carrying one tag; lists the tags of the chosen tag group when one is chosen."""

    title = "tag"
    parameter_name = "tag"

    def lookups(self, request, model_admin):
        tags = Tag.objects.select_related("group")
        group_id = request.GET.get(TagGroupFilter.parameter_name)
        if group_id and group_id.isdigit():
            tags = tags.filter(group_id=group_id)
        return [(str(tag.id), str(tag)) for tag in tags]

    def queryset(self, request, queryset):
        return queryset.tagged(self.value()) if self.value() else queryset


class DeviceFilter(admin.SimpleListFilter):
    """PVs whose device starts with the text typed (devices are too many to list)."""

    title = "device"
    parameter_name = "device"
    template = "admin/input_filter.html"

    def lookups(self, request, model_admin):
        return ()

    def has_output(self) -> bool:
        return True

    def choices(self, changelist):
        # The template renders a text box; carry the other filters along as hidden fields.
        yield {
            "value": self.value() or "",
            "others": [
                (key, value) for key, value in changelist.get_filters_params().items() if key != self.parameter_name
            ],
        }

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(device__istartswith=self.value().strip())
        return queryset


class PVSetFilter(admin.SimpleListFilter):
    """The PVs of one saved PV set (its explicit list and what its filters select)."""

    title = "PV set"
    parameter_name = "pv_set"

    def lookups(self, request, model_admin):
        return [(str(pv_set.id), pv_set.name) for pv_set in PVSet.objects.all()]

    def queryset(self, request, queryset):
        pv_set = PVSet.objects.filter(pk=self.value()).first() if (self.value() or "").isdigit() else None
        if pv_set is None:
            return queryset
        try:
            return queryset.filter(pv_set_condition(pv_set))
        except InvalidPVSet as exc:
            messages.error(request, str(exc))
            return queryset.none()


class HasReadbackFilter(admin.SimpleListFilter):
    title = "readback"
    parameter_name = "has_readback"

    def lookups(self, request, model_admin):
        return [("yes", "Has a readback"), ("no", "No readback")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.with_readback()
        if self.value() == "no":
            return queryset.filter(readback_address="")
        return queryset


class ProtocolFilter(admin.SimpleListFilter):
    """PVs with any address (setpoint, readback or config) on one protocol."""

    title = "protocol"
    parameter_name = "protocol"

    def lookups(self, request, model_admin):
        return CHOICES

    def queryset(self, request, queryset):
        return queryset.using_protocol(self.value()) if self.value() in PROTOCOLS else queryset


@admin.register(PV)
class PVAdmin(admin.ModelAdmin):
    """PV curation. Saves, deletions, bulk actions (which work on 'select all' too) and imports
    go through pvs.services, which records each in the audit log."""

    list_display = [
        "setpoint_address",
        "protocol",
        "readback_address",
        "device",
        "tag_list",
        "abs_tolerance",
        "rel_tolerance",
        "read_only",
        "restore_stage",
    ]
    list_filter = [PVSetFilter, TagGroupFilter, TagFilter, DeviceFilter, "read_only", HasReadbackFilter, ProtocolFilter]
    search_fields = SEARCH_FIELDS
    search_help_text = "Search addresses, device and description."
    autocomplete_fields = ["tags"]
    list_per_page = 100
    list_max_show_all = 1000
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    readonly_fields = ["created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["setpoint_address", "readback_address", "config_address", "device", "description"]}),
        (
            "Comparison and restore",
            {
                "fields": ["abs_tolerance", "rel_tolerance", "read_only", "restore_stage", "wait_for_completion"],
            },
        ),
        ("Tags", {"fields": ["tags"]}),
        ("History", {"fields": ["created_at", "updated_at"], "classes": ["collapse"]}),
    ]
    actions = [
        "add_tags",
        "remove_tags",
        "set_tolerances",
        "mark_read_only",
        "mark_writable",
        "add_to_pv_set",
        "remove_from_pv_set",
        "export_csv",
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).with_tags()

    def get_search_results(self, request, queryset, search_term):
        """Text written with a protocol (``ca://X``, ``PVA://X``) finds addresses of that protocol
        in the registry's spelling, as the API's and the pages' `search` does (PVQuerySet.search);
        other text is Django's search (each word in any of SEARCH_FIELDS)."""
        text = search_term.strip()
        if search_of(text)[0] is not None:
            return queryset.search(text), False
        return super().get_search_results(request, queryset, search_term)

    def save_model(self, request, obj, form, change):
        data = {name: form.cleaned_data[name] for name in form.fields}
        data["tags"] = [tag.id for tag in data["tags"]]
        if change:
            services.update_pvs({obj.pk: data}, actor=request.user, via=AuditVia.ADMIN)
        else:
            [obj.pk] = services.create_pvs([data], actor=request.user, via=AuditVia.ADMIN)

    def save_related(self, request, form, formsets, change):
        """Nothing left to save: save_model stored the tags with the PV (PVAdmin has no inlines)."""

    def delete_model(self, request, obj):
        services.delete_pvs(PV.objects.filter(pk=obj.pk), actor=request.user, via=AuditVia.ADMIN)

    def delete_queryset(self, request, queryset):
        services.delete_pvs(queryset, actor=request.user, via=AuditVia.ADMIN)

    @admin.display(description="protocol")
    def protocol(self, pv: PV) -> str:
        """The setpoint's protocol (CA or PVA), and the readback's when it differs."""
        text = pv.setpoint_protocol.upper()
        if pv.readback_protocol and pv.readback_protocol != pv.setpoint_protocol:
            text += f" (readback {pv.readback_protocol.upper()})"
        return text

    @admin.display(description="tags")
    def tag_list(self, pv: PV) -> str:
        return ", ".join(str(tag) for tag in pv.tags.all())

    # Bulk actions ---------------------------------------------------------------------------

    def _action_form(self, request, queryset, form_class, title, action):
        """Show (or process) the intermediate page of an action that needs parameters."""
        form = form_class(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            return form
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "form": form,
            "action": action,
            "queryset_count": queryset.count(),
            "select_across": request.POST.get("select_across", "0"),
            "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
            "opts": self.model._meta,
            "media": self.media + form.media,
        }
        return TemplateResponse(request, "admin/pvs/pv/action_form.html", context)

    def _tag_action(self, request, queryset, action: str, title: str, service, verb: str):
        result = self._action_form(request, queryset, TagChoiceForm, title, action)
        if isinstance(result, TemplateResponse):
            return result
        count = service(queryset, result.cleaned_data["tags"], actor=request.user, via=AuditVia.ADMIN)
        self.message_user(request, f"{verb} {count} tag assignments.", messages.SUCCESS)
        return None

    @admin.action(description="Add tags to selected PVs", permissions=["change"])
    def add_tags(self, request, queryset):
        return self._tag_action(request, queryset, "add_tags", "Add tags", services.add_tags, "Added")

    @admin.action(description="Remove tags from selected PVs", permissions=["change"])
    def remove_tags(self, request, queryset):
        return self._tag_action(request, queryset, "remove_tags", "Remove tags", services.remove_tags, "Removed")

    @admin.action(description="Set tolerances of selected PVs", permissions=["change"])
    def set_tolerances(self, request, queryset):
        result = self._action_form(request, queryset, ToleranceForm, "Set tolerances", "set_tolerances")
        if isinstance(result, TemplateResponse):
            return result
        changed = services.set_tolerances(
            queryset,
            abs_tolerance=result.cleaned_data["abs_tolerance"],
            rel_tolerance=result.cleaned_data["rel_tolerance"],
            actor=request.user,
            via=AuditVia.ADMIN,
        )
        self.message_user(request, f"Set tolerances of {changed} PVs.", messages.SUCCESS)
        return None

    @admin.action(description="Mark selected PVs read-only (never restored)", permissions=["change"])
    def mark_read_only(self, request, queryset):
        changed = services.set_read_only(queryset, True, actor=request.user, via=AuditVia.ADMIN)
        self.message_user(request, f"Marked {changed} PVs read-only.", messages.SUCCESS)

    @admin.action(description="Mark selected PVs writable", permissions=["change"])
    def mark_writable(self, request, queryset):
        changed = services.set_read_only(queryset, False, actor=request.user, via=AuditVia.ADMIN)
        self.message_user(request, f"Marked {changed} PVs writable.", messages.SUCCESS)

    def has_change_pvset_permission(self, request) -> bool:
        return request.user.has_perm("pvs.change_pvset")

    def _pv_set_action(self, request, queryset, action: str, title: str, key: str, verb: str):
        result = self._action_form(request, queryset, PVSetChoiceForm, title, action)
        if isinstance(result, TemplateResponse):
            return result
        pv_set = result.cleaned_data["pv_set"]
        ids = list(queryset.values_list("pk", flat=True))
        counts = pv_sets.change_members(pv_set, **{key: ids}, actor=request.user, via=AuditVia.ADMIN)
        done = counts["added" if key == "add" else "removed"]
        self.message_user(request, f"{verb} {done} PVs: PV set “{pv_set}”.", messages.SUCCESS)
        return None

    @admin.action(description="Add selected PVs to a PV set", permissions=["change_pvset"])
    def add_to_pv_set(self, request, queryset):
        return self._pv_set_action(request, queryset, "add_to_pv_set", "Add to a PV set", "add", "Added")

    @admin.action(description="Remove selected PVs from a PV set", permissions=["change_pvset"])
    def remove_from_pv_set(self, request, queryset):
        return self._pv_set_action(request, queryset, "remove_from_pv_set", "Remove from a PV set", "remove", "Removed")

    @admin.action(description="Export selected PVs to CSV")
    def export_csv(self, request, queryset):
        return _csv_response(queryset)

    # Import and export pages ----------------------------------------------------------------

    def get_urls(self):
        return [
            path("import/", self.admin_site.admin_view(self.import_view), name="pvs_pv_import"),
            path("export/", self.admin_site.admin_view(self.export_view), name="pvs_pv_export"),
            *super().get_urls(),
        ]

    def import_view(self, request):
        """Check (dry run) or apply a registry file; errors are listed with file and line. A file
        that passed its check comes back with the page (pvs.checked_uploads), so "Import" applies
        it without choosing it again."""
        if not self.has_add_permission(request) or not self.has_change_permission(request):
            raise PermissionDenied
        report, checked, upload, refusal = None, None, None, ""
        if request.method == "POST" and "apply_checked" in request.POST:
            form = RegistryImportForm()
            try:
                upload = checked_uploads.unsign(request.POST.get("checked", ""), request.user)
            except checked_uploads.CheckedUploadError as exc:
                refusal = str(exc)
        else:
            form = RegistryImportForm(request.POST or None, request.FILES or None)
            if request.method == "POST" and form.is_valid():
                data = form.cleaned_data
                upload = checked_uploads.CheckedUpload(
                    name=data["file"].name,
                    content=data["file"].read(),
                    includes={f.name: f.read() for f in data["includes"]},
                    macros=data["macros"],
                )
        if upload is not None:
            apply = "apply" in request.POST or "apply_checked" in request.POST
            report = services.import_registry(
                upload.name,
                upload.content,
                actor=request.user,
                via=AuditVia.ADMIN,
                dry_run=not apply,
                macros=upload.macros,
                include_loader=uploaded_include_loader(upload.includes),
            )
            if apply and report.ok:
                self.message_user(
                    request,
                    f"Imported {upload.name}: {report.new} new, {report.updated} updated, "
                    f"{report.unchanged} unchanged.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:pvs_pv_changelist"))
            if not apply and report.ok:
                checked = {"name": upload.name, "token": checked_uploads.sign(upload, request.user)}
        context = {
            **self.admin_site.each_context(request),
            "title": "Import PVs",
            "form": form,
            "report": report,
            "checked": checked,
            "refusal": refusal,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/pvs/pv/import.html", context)

    def export_view(self, request):
        """The whole registry as CSV, in the format the import page reads."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        return _csv_response(PV.objects.all())


def _csv_response(queryset) -> HttpResponse:
    stream = io.StringIO()
    export_pvs_csv(queryset, stream)
    response = HttpResponse(stream.getvalue(), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="squirrel-pvs-{stamp}.csv"'
    return response


COUNT = "_count"  # the PV set form's "Count the PVs" button (templates/admin/pvs/pvset/change_form.html)


@admin.register(PVSet)
class PVSetAdmin(admin.ModelAdmin):
    """Saved PV sets: filters as fields, the explicit list as addresses (or from the PV list's
    actions "Add selected PVs to a PV set" / "Remove ..."), and how many PVs the set selects,
    linked to the PV list filtered by it, or, before saving, as the form stands ("Count the PVs").
    Saves and deletions go through pvs.pv_sets (audited)."""

    form = PVSetForm
    list_display = ["name", "description", "listed_count", "resolved_count", "updated_at"]
    search_fields = ["name", "description"]
    readonly_fields = ["resolved_count", "created_by", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "description", "resolved_count"]}),
        ("Filters (a PV must match all of them)", {"fields": PVSetForm.FILTER_FIELDS}),
        ("Listed PVs", {"fields": ["pv_list"]}),
        ("History", {"fields": ["created_by", "created_at", "updated_at"], "classes": ["collapse"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(listed=Count("pvs"))

    def get_form(self, request, obj=None, change=False, **kwargs):
        """The form; when "Count the PVs" was pressed (COUNT), one that counts what it selects,
        says so in a message and reports itself not valid, so the admin shows it again as typed
        and saves nothing (errors, if any, as usual)."""
        form_class = super().get_form(request, obj, change=change, **kwargs)
        if request.method != "POST" or COUNT not in request.POST:
            return form_class

        class CountingForm(form_class):
            def is_valid(self) -> bool:
                if super().is_valid():
                    count = self.preview_count()
                    messages.info(
                        request,
                        f"As the form stands, the set selects {count} PV{'s' if count != 1 else ''}. "
                        "Nothing was saved: Save to keep it.",
                    )
                return False

        return CountingForm

    @admin.display(description="listed PVs", ordering="listed")
    def listed_count(self, pv_set: PVSet) -> int:
        return pv_set.listed

    @admin.display(description="PVs in the set")
    def resolved_count(self, pv_set: PVSet) -> str:
        if pv_set.pk is None:
            return "(not saved yet: “Count the PVs”, below, counts them without saving)"
        try:
            count = pv_set_pvs(pv_set).count()
        except InvalidPVSet as exc:
            return str(exc)
        url = f"{reverse('admin:pvs_pv_changelist')}?{PVSetFilter.parameter_name}={pv_set.pk}"
        return format_html('<a href="{}">{} PVs</a>', url, count)

    def save_model(self, request, obj, form, change):
        form.save_set(actor=request.user, via=AuditVia.ADMIN)

    def save_related(self, request, form, formsets, change):
        """save_model stored the explicit list with the set."""

    def delete_model(self, request, obj):
        pv_sets.delete_pv_set(obj, actor=request.user, via=AuditVia.ADMIN)

    def delete_queryset(self, request, queryset):
        for pv_set in queryset:
            pv_sets.delete_pv_set(pv_set, actor=request.user, via=AuditVia.ADMIN)
