"""Snapshot pages: list, detail, and restore from a page."""

from django.urls import path

from snapshots import views

app_name = "snapshots"

urlpatterns = [
    path("snapshots/", views.SnapshotListView.as_view(), name="list"),
]
