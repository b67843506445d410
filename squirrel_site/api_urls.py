"""The /api/v1/ URL space: each app's API routes, included here, and the schema and its docs page."""

from django.contrib.auth.decorators import login_required
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from squirrel_site.api_health import HealthView

urlpatterns = [
    path("health/", HealthView.as_view(), name="health"),
    path("", include("pvs.api.urls")),
    path("", include("tags.api.urls")),
    path("", include("monitor.api.urls")),
    path("", include("jobs.api.urls")),
    path("", include("snapshots.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # A page for people: without a session it sends them to the login page rather than a 401.
    path("docs/", login_required(SpectacularSwaggerView.as_view(url_name="api-schema")), name="api-docs"),
]
