"""Snapshot pages: each package's, in the app's namespace (snapshots:list, snapshots:compare, ...)."""

from django.urls import include, path

app_name = "snapshots"

urlpatterns = [
    path("", include("snapshots.capture.urls")),
    path("", include("snapshots.comparison.urls")),
    path("", include("snapshots.restore.urls")),
]
