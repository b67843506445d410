"""PV pages: the live table."""

from django.contrib.auth.mixins import PermissionRequiredMixin
from django.template.response import TemplateResponse
from django.views import View

from pvs.filtersets import PVFilterSet
from pvs.models import PV
from squirrel_site.pages import offset_page
from squirrel_site.paginators import EstimatedCountPaginator

# The live table's filters and their labels on the page (PVFilterSet's `pv`, a list of
# addresses, is for scripts).
LIVE_FILTERS = {
    "search": "Search",
    "tag": "Tags (PVs with all of them)",
    "tag_group": "Tag group",
    "device": "Device prefix",
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
        pvs = filterset.qs if filterset.is_valid() else PV.objects.none()
        pvs = pvs.with_tags().order_by("setpoint_address")
        filtered = any(request.GET.get(name) for name in LIVE_FILTERS)
        count = EstimatedCountPaginator(pvs, 1).count if not filtered else None
        context = {
            "filterset": filterset,
            "fields": [filterset.form[name] for name in LIVE_FILTERS],
            "page": offset_page(request.GET, pvs, count=count),
        }
        return TemplateResponse(request, "pvs/live.html", context)
