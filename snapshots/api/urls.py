"""The snapshot app's API: each package's, in the namespace snapshots-api (snapshots-api:snapshot-list, ...)."""

from django.urls import include, path

app_name = "snapshots-api"

urlpatterns = [
    path("", include("snapshots.capture.api.urls")),
    path("", include("snapshots.restore.api.urls")),
    path("", include("snapshots.comparison.api.urls")),
]
