"""Compare and drift in the API (/compare/, /drift/), included by snapshots.api.urls."""

from django.urls import path

from snapshots.comparison.api.views import CompareView, DriftView

urlpatterns = [
    path("compare/", CompareView.as_view(), name="compare"),
    path("drift/", DriftView.as_view(), name="drift"),
]
