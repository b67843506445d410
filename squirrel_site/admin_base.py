"""Admin building blocks shared by the apps."""

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList


class BoundedChangeList(ChangeList):
    """A change list whose date drill-down (date_hierarchy) refuses dates Python cannot hold.

    Django checks only that `?created_at__year=` and its month and day make a date, not that the
    number fits a C long (OverflowError) or that the year after it exists (9999): both were a 500.
    Refused lookups are Django's usual answer to a bad filter, the unfiltered list with "?e=1".
    """

    def get_filters(self, request):
        try:
            return super().get_filters(request)
        except (OverflowError, ValueError) as error:
            raise IncorrectLookupParameters(error) from error


class ModelAdmin(admin.ModelAdmin):
    """The project's ModelAdmin: lists with a date drill-down refuse impossible dates (400-like)."""

    def get_changelist(self, request, **kwargs):
        return BoundedChangeList


class ReadOnlyAdmin(ModelAdmin):
    """Records written by a service (restores, the audit log): browse, never add, edit or delete."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
