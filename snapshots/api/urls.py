from django.urls import path
from rest_framework.routers import SimpleRouter

from snapshots.api.compare_views import CompareView, DriftView
from snapshots.api.restore_views import RestorePreviewViewSet, RestoreViewSet
from snapshots.api.views import SnapshotViewSet

app_name = "snapshots-api"

router = SimpleRouter()
router.register("snapshots", SnapshotViewSet, basename="snapshot")
router.register("restore-previews", RestorePreviewViewSet, basename="restore-preview")
router.register("restores", RestoreViewSet, basename="restore")
urlpatterns = router.urls + [
    path("compare/", CompareView.as_view(), name="compare"),
    path("drift/", DriftView.as_view(), name="drift"),
]
