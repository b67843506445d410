"""The /api/v1/ URL space: each app's API routes, included here."""

from django.urls import include, path

from squirrel_site.api_health import HealthView

urlpatterns = [
    path("health/", HealthView.as_view(), name="health"),
    path("", include("pvs.api.urls")),
    path("", include("tags.api.urls")),
    path("", include("monitor.api.urls")),
    path("", include("jobs.api.urls")),
    path("", include("snapshots.api.urls")),
]
