"""URL configuration: pages (each app's urls.py), login, admin and the API."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

# PostgreSQL down answers 503 with Retry-After wherever it is noticed (squirrel_site.errors).
handler500 = "squirrel_site.errors.server_error"

admin.site.site_header = "Squirrel administration"
admin.site.site_title = "Squirrel"
admin.site.index_title = "PV registry and snapshots"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="snapshots:list", permanent=False), name="home"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(template_name="squirrel/login.html", redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("squirrel_site.api_urls")),
    path("", include("snapshots.urls")),
    path("", include("pvs.urls")),
    path("", include("jobs.urls")),
]
