"""Routes of the monitor app's API, under /api/v1/."""

from rest_framework.routers import SimpleRouter

from monitor.api.views import LiveValueViewSet

app_name = "monitor-api"

router = SimpleRouter()
router.register("live", LiveValueViewSet, basename="live")

urlpatterns = router.urls
