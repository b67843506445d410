"""Job API: read-only; jobs are created by the actions that need them (snapshot, restore)."""

from rest_framework import viewsets
from rest_framework.pagination import CursorPagination

from jobs.api.serializers import JobSerializer
from jobs.models import Job


class JobPagination(CursorPagination):
    ordering = "-id"
    page_size = 50


class JobViewSet(viewsets.ReadOnlyModelViewSet):
    """Jobs you started (staff see all), newest first."""

    serializer_class = JobSerializer
    pagination_class = JobPagination

    def get_queryset(self):
        jobs = Job.objects.select_related("created_by")
        user = self.request.user
        return jobs if user.is_staff else jobs.filter(created_by=user)
