"""Routes of the tags app's API, under /api/v1/."""

from rest_framework.routers import SimpleRouter

app_name = "tags-api"

router = SimpleRouter()
urlpatterns = router.urls
