"""PV pages: the live table, and saved PV sets (list, page, create, edit, delete)."""

from django.contrib import messages
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.views import View

from pvs.archiver import archivers
from pvs.filtersets import InvalidPVSet, PVFilterSet
from pvs.forms import PVSetForm
from pvs.models import PV, PVSet
from pvs.protocols import LABELS
from pvs.pv_sets import PVSetError, delete_pv_set
from pvs.selections import pv_set_pvs
from squirrel_site.audit import AuditVia
from squirrel_site.pages import offset_page
from squirrel_site.paginators import EstimatedCountPaginator
from tags.models import Tag, TagGroup

# The live table's filters and their labels on the page (PVFilterSet's `pv`, a list of
# addresses, is for scripts).
LIVE_FILTERS = {
    "pv_set": "PV set",
    "search": "Search",
    "tag": "Tags (PVs with all of them)",
    "tag_group": "Tag group",
    "device": "Device prefix",
    "protocol": "Protocol",
}


class LiveTableView(PermissionRequiredMixin, View):
    """Registry PVs by tag, tag group, device or text, a page at a time, with live values
    (static/squirrel/live.js subscribes to the addresses on the page)."""

    permission_required = "pvs.view_pv"

    def get(self, request):
        filterset = PVFilterSet(request.GET, queryset=PV.objects.all())
        for name, label in LIVE_FILTERS.items():
            filterset.form.fields[name].label = label  # the form is the filterset's own copy
        filterset.form.fields["tag_group"].empty_label = "any"
        filterset.form.fields["pv_set"].empty_label = "any"
        filterset.form.fields["protocol"].empty_label = "any"
        pvs = filterset.qs if filterset.is_valid() else PV.objects.none()
        pvs = pvs.with_tags().order_by("setpoint_address")
        filtered = any(request.GET.get(name) for name in LIVE_FILTERS)
        count = EstimatedCountPaginator(pvs, 1).count if not filtered else None
        context = {
            "filterset": filterset,
            "fields": [filterset.form[name] for name in LIVE_FILTERS],
            "page": offset_page(request.GET, pvs, count=count),
            "archived": bool(archivers()),  # each row's History control (static/squirrel/history.js)
        }
        return TemplateResponse(request, "pvs/live.html", context)


class PVSetListView(PermissionRequiredMixin, View):
    """The saved PV sets, by name, with how many PVs each lists explicitly."""

    permission_required = "pvs.view_pvset"

    def get(self, request):
        pv_sets = PVSet.objects.select_related("created_by").annotate(listed=Count("pvs"))
        # Sets are few (tens): their filters in words cost a query or two each.
        rows = [(pv_set, describe_filters(pv_set)) for pv_set in pv_sets]
        return TemplateResponse(request, "pvs/pv_sets.html", {"rows": rows})


def describe_filters(pv_set: PVSet) -> list[str]:
    """The set's filters in words, for its page."""
    filters = pv_set.filters or {}
    words = []
    if filters.get("tag"):
        tags = Tag.objects.select_related("group").filter(pk__in=filters["tag"])
        words.append("PVs with all the tags " + ", ".join(str(tag) for tag in tags))
    if filters.get("tag_group"):
        group = TagGroup.objects.filter(pk=filters["tag_group"]).first()
        words.append(f"PVs with any tag of the group {group}")
    if filters.get("device"):
        words.append(f"PVs of devices starting with “{filters['device']}”")
    if filters.get("search"):
        words.append(f"PVs matching “{filters['search']}”")
    if "read_only" in filters:
        words.append("read-only PVs only" if filters["read_only"] in (True, "true") else "writable PVs only")
    if filters.get("protocol") in LABELS:
        words.append(f"PVs with an address on {LABELS[filters['protocol']]}")
    return words


class PVSetDetailView(PermissionRequiredMixin, View):
    """One PV set: its filters in words and the PVs it resolves to, a page at a time."""

    permission_required = "pvs.view_pvset"

    def get(self, request, pk):
        pv_set = get_object_or_404(PVSet.objects.select_related("created_by"), pk=pk)
        context = {"pv_set": pv_set, "filters": describe_filters(pv_set), "listed": pv_set.pvs.count()}
        try:
            pvs = pv_set_pvs(pv_set)
            context["page"] = offset_page(request.GET, pvs.with_tags().order_by("setpoint_address"), count=pvs.count())
        except InvalidPVSet as exc:
            context["problem"] = str(exc)
        return TemplateResponse(request, "pvs/pv_set.html", context)


class PVSetEditView(PermissionRequiredMixin, View):
    """Create a PV set (no pk) or change one: the form, then its page."""

    def get_permission_required(self):
        return ["pvs.change_pvset"] if self.kwargs.get("pk") else ["pvs.add_pvset"]

    def instance(self) -> PVSet:
        pk = self.kwargs.get("pk")
        return get_object_or_404(PVSet, pk=pk) if pk else PVSet()

    def get(self, request, pk=None):
        return self.render(request, PVSetForm(instance=self.instance()))

    def post(self, request, pk=None):
        form = PVSetForm(request.POST, instance=self.instance())
        if not form.is_valid():
            return self.render(request, form, status=400)
        if "preview" in request.POST:
            return self.render(request, form, preview=form.preview_count())
        try:
            pv_set = form.save_set(actor=request.user, via=AuditVia.PAGE)
        except PVSetError:
            return self.render(request, form, status=400)
        messages.success(request, f"PV set “{pv_set.name}” saved.")
        return redirect("pvs:pv_set", pv_set.pk)

    def render(self, request, form, status=200, preview=None):
        pv_set = PVSet.objects.get(pk=form.instance.pk) if form.instance.pk else None  # as saved
        context = {"form": form, "pv_set": pv_set, "preview": preview}
        return TemplateResponse(request, "pvs/pv_set_form.html", context, status=status)


class PVSetDeleteView(PermissionRequiredMixin, View):
    """GET: ask; POST: delete a PV set (refused while a schedule uses it)."""

    permission_required = "pvs.delete_pvset"

    def get(self, request, pk):
        pv_set = get_object_or_404(PVSet, pk=pk)
        return TemplateResponse(request, "pvs/pv_set_delete.html", {"pv_set": pv_set})

    def post(self, request, pk):
        pv_set = get_object_or_404(PVSet, pk=pk)
        try:
            delete_pv_set(pv_set, actor=request.user, via=AuditVia.PAGE)
        except PVSetError as exc:
            messages.error(request, str(exc))
            return redirect("pvs:pv_set", pk)
        messages.success(request, f"PV set “{pv_set.name}” deleted.")
        return redirect("pvs:pv_sets")
