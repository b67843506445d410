from rest_framework.routers import SimpleRouter

from jobs.api.views import JobViewSet

app_name = "jobs-api"

router = SimpleRouter()
router.register("jobs", JobViewSet, basename="job")
urlpatterns = router.urls
