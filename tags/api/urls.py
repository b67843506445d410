"""Routes of the tags app's API, under /api/v1/."""

from rest_framework.routers import SimpleRouter

from tags.api.views import TagGroupViewSet, TagViewSet

app_name = "tags-api"

router = SimpleRouter()
router.register("tag-groups", TagGroupViewSet, basename="tag-group")
router.register("tags", TagViewSet, basename="tag")
urlpatterns = router.urls
