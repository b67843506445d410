"""The compare and drift pages (snapshots:compare, snapshots:drift), included by snapshots.urls."""

from django.urls import path

from snapshots.comparison import views

urlpatterns = [
    path("compare/", views.CompareView.as_view(), name="compare"),
    path("compare/archive/", views.CompareArchiveView.as_view(), name="compare_archive"),
    path("drift/", views.DriftView.as_view(), name="drift"),
]
