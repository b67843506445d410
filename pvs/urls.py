"""PV pages: the live table."""

from django.urls import path

from pvs import views

app_name = "pvs"

urlpatterns = [
    path("live/", views.LiveTableView.as_view(), name="live"),
]
