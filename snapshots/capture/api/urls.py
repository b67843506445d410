"""Snapshots in the API (/snapshots/...), included by snapshots.api.urls."""

from rest_framework.routers import SimpleRouter

from snapshots.capture.api.views import SnapshotViewSet

router = SimpleRouter()
router.register("snapshots", SnapshotViewSet, basename="snapshot")
urlpatterns = router.urls
