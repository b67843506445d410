"""Routes of the pvs app's API, under /api/v1/."""

from rest_framework.routers import SimpleRouter

app_name = "pvs-api"

router = SimpleRouter()
urlpatterns = router.urls
