"""Job API: read-only; jobs are created by the actions that need them (snapshot, restore)."""

from rest_framework import viewsets

from jobs.api.serializers import JobSerializer
from jobs.models import Job
from squirrel_site.paginators import IdCursorPagination
from squirrel_site.permissions import ModelPermissions


class JobPagination(IdCursorPagination):
    ordering = "-id"
    page_size = 50


class JobViewSet(viewsets.ReadOnlyModelViewSet):
    """The jobs the user may follow (Job.objects.visible_to), newest first; jobs.view_job."""

    serializer_class = JobSerializer
    pagination_class = JobPagination
    permission_classes = [ModelPermissions]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Job.objects.none()  # the schema generator's request has no user
        return Job.objects.visible_to(self.request.user).select_related("created_by")
