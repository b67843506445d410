"""The snapshot list (snapshots:list) and its import (snapshots:import), included by snapshots.urls;
the snapshot page is snapshots.restore's."""

from django.urls import path

from snapshots.capture import views

urlpatterns = [
    path("snapshots/", views.SnapshotListView.as_view(), name="list"),
    path("snapshots/import/", views.ImportSnapshotView.as_view(), name="import"),
    path("snapshots/<int:pk>/edit/", views.EditSnapshotView.as_view(), name="edit"),
]
