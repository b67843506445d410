"""Restore previews and restores in the API (/restore-previews/..., /restores/...), included by
snapshots.api.urls."""

from rest_framework.routers import SimpleRouter

from snapshots.restore.api.views import RestorePreviewViewSet, RestoreViewSet

router = SimpleRouter()
router.register("restore-previews", RestorePreviewViewSet, basename="restore-preview")
router.register("restores", RestoreViewSet, basename="restore")
urlpatterns = router.urls
