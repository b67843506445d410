from django.urls import path
from rest_framework.routers import SimpleRouter

from snapshots.capture.api.views import SnapshotViewSet
from snapshots.comparison.api.views import CompareView, DriftView
from snapshots.restore.api.views import RestorePreviewViewSet, RestoreViewSet

app_name = "snapshots-api"

router = SimpleRouter()
router.register("snapshots", SnapshotViewSet, basename="snapshot")
router.register("restore-previews", RestorePreviewViewSet, basename="restore-preview")
router.register("restores", RestoreViewSet, basename="restore")
urlpatterns = router.urls + [
    path("compare/", CompareView.as_view(), name="compare"),
    path("drift/", DriftView.as_view(), name="drift"),
]
