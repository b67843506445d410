"""The snapshot page and the restore pages (snapshots:detail, snapshots:restore_preview, ...),
included by snapshots.urls."""

from django.urls import path

from snapshots.restore import views

urlpatterns = [
    path("snapshots/<int:pk>/", views.SnapshotDetailView.as_view(), name="detail"),
    path("snapshots/<int:pk>/restore/", views.CreatePreviewView.as_view(), name="restore_preview_create"),
    path("restores/", views.RestoreListView.as_view(), name="restore_list"),
    path("restores/previews/<int:pk>/", views.PreviewView.as_view(), name="restore_preview"),
    path("restores/previews/<int:pk>/execute/", views.ExecutePreviewView.as_view(), name="restore_execute"),
    path("restores/<int:pk>/", views.RestoreView.as_view(), name="restore"),
    path("restores/<int:pk>/undo/", views.UndoRestoreView.as_view(), name="restore_undo"),
]
