"""PV pages: the live table."""

app_name = "pvs"

urlpatterns: list = []
