"""Snapshot pages: list, detail, and restore from a page."""

from django.urls import path

from snapshots.capture import views
from snapshots.comparison import views as compare_views
from snapshots.restore import views as restore_views

app_name = "snapshots"

urlpatterns = [
    path("snapshots/", views.SnapshotListView.as_view(), name="list"),
    path("snapshots/<int:pk>/", views.SnapshotDetailView.as_view(), name="detail"),
    path("compare/", compare_views.CompareView.as_view(), name="compare"),
    path("drift/", compare_views.DriftView.as_view(), name="drift"),
    path("snapshots/<int:pk>/restore/", restore_views.CreatePreviewView.as_view(), name="restore_preview_create"),
    path("restores/previews/<int:pk>/", restore_views.PreviewView.as_view(), name="restore_preview"),
    path("restores/previews/<int:pk>/execute/", restore_views.ExecutePreviewView.as_view(), name="restore_execute"),
    path("restores/<int:pk>/", restore_views.RestoreView.as_view(), name="restore"),
    path("restores/<int:pk>/undo/", restore_views.UndoRestoreView.as_view(), name="restore_undo"),
]
