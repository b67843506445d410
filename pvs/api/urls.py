"""Routes of the pvs app's API, under /api/v1/."""

from rest_framework.routers import SimpleRouter

from pvs.api.pv_sets import PVSetViewSet
from pvs.api.views import PVViewSet

app_name = "pvs-api"

router = SimpleRouter()
router.register("pvs", PVViewSet, basename="pv")
router.register("pv-sets", PVSetViewSet, basename="pv-set")
urlpatterns = router.urls
