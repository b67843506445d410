"""Compare and drift in the API (/compare/, /compare/columns/, /drift/), included by snapshots.api.urls."""

from django.urls import path

from snapshots.comparison.api.views import CompareArchiveView, CompareColumnsView, CompareView, DriftView

urlpatterns = [
    path("compare/", CompareView.as_view(), name="compare"),
    path("compare/columns/", CompareColumnsView.as_view(), name="compare-columns"),
    path("compare/archive/", CompareArchiveView.as_view(), name="compare-archive"),
    path("drift/", DriftView.as_view(), name="drift"),
]
