"""Admin building blocks shared by the apps."""

from datetime import datetime, timedelta

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList


class BoundedChangeList(ChangeList):
    """A change list whose date drill-down (date_hierarchy) refuses dates Python cannot hold.

    Django checks only that `?created_at__year=` and its month and day make a date, not that the
    number fits a C long (OverflowError) or that the period after it exists (year 9999): both were
    a 500. Refused, they get Django's usual answer to a bad filter: the whole list with "?e=1".
    """

    def get_filters(self, request):
        if self.date_hierarchy:
            self._refuse_impossible_drill_down()
        return super().get_filters(request)

    def _refuse_impossible_drill_down(self) -> None:
        params = self.get_filters_params()
        given = [params.get(f"{self.date_hierarchy}__{part}") for part in ("year", "month", "day")]
        if given[0] is None:
            return
        try:
            year, month, day = (int(values[-1]) if values else 1 for values in given)
            # Django filters up to the next year, month or day: that must be a date as well.
            datetime(year, month, day) + timedelta(days=366)
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
