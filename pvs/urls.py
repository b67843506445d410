"""PV pages: the live table and the saved PV sets."""

from django.urls import path

from pvs import views

app_name = "pvs"

urlpatterns = [
    path("live/", views.LiveTableView.as_view(), name="live"),
    path("pv-sets/", views.PVSetListView.as_view(), name="pv_sets"),
    path("pv-sets/new/", views.PVSetEditView.as_view(), name="pv_set_new"),
    path("pv-sets/<int:pk>/", views.PVSetDetailView.as_view(), name="pv_set"),
    path("pv-sets/<int:pk>/edit/", views.PVSetEditView.as_view(), name="pv_set_edit"),
    path("pv-sets/<int:pk>/delete/", views.PVSetDeleteView.as_view(), name="pv_set_delete"),
]
