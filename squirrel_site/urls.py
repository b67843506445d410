"""URL configuration."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

admin.site.site_header = "Squirrel administration"
admin.site.site_title = "Squirrel"
admin.site.index_title = "PV registry and snapshots"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/v1/", include("squirrel_site.api_urls")),
]
