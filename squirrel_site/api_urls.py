"""The /api/v1/ URL space: each app's API routes, included here."""

from django.urls import include, path

urlpatterns = [
    path("", include("pvs.api.urls")),
    path("", include("tags.api.urls")),
    path("", include("monitor.api.urls")),
    path("", include("jobs.api.urls")),
    path("", include("snapshots.api.urls")),
]
