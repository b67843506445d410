"""The /api/v1/ URL space: each app's API routes, included here, and the schema and its docs page."""

from csp.constants import SELF
from csp.decorators import csp_replace
from django.contrib.auth.decorators import login_required
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from squirrel_site.api_health import HealthView
from squirrel_site.api_root import ApiRootView

urlpatterns = [
    path("", ApiRootView.as_view(), name="api-root"),
    path("health/", HealthView.as_view(), name="health"),
    path("", include("pvs.api.urls")),
    path("", include("tags.api.urls")),
    path("", include("monitor.api.urls")),
    path("", include("jobs.api.urls")),
    path("", include("snapshots.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # A page for people: without a session it sends them to the login page rather than a 401.
    # The split view serves Swagger UI's start-up script as a file (`?script`), and the template
    # has no inline style: the Content-Security-Policy allows neither inline (docs/security.md).
    # Swagger UI draws its icons as data: SVG images, which this page alone may show.
    path(
        "docs/",
        login_required(
            csp_replace({"img-src": [SELF, "data:"]})(
                SpectacularSwaggerSplitView.as_view(url_name="api-schema", template_name="squirrel/api_docs.html")
            )
        ),
        name="api-docs",
    ),
]
