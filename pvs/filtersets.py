"""Filters that select registry PVs, shared by the API and the HTML lists."""

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from pvs.models import PV, PVSet
from pvs.protocols import CHOICES, normalized
from pvs.validators import address_error
from tags.models import Tag, TagGroup


class AddressListField(forms.Field):
    """A repeatable query parameter of EPICS addresses (``?pv=A&pv=B``), each one validated and
    cleaned to the registry's spelling (``ca://A`` is ``A``, ``PVA://B`` is ``pva://B``)."""

    widget = forms.MultipleHiddenInput
    # The query parameter, for the API schema (squirrel_site.schema.form_parameters).
    openapi_schema = {"type": "array", "items": {"type": "string"}}

    def to_python(self, value) -> list[str]:
        if isinstance(value, str):
            value = [value]
        elif not isinstance(value, (list, tuple)) and value is not None:
            raise ValidationError("Enter a list of addresses.", code="invalid_list")
        return [str(address).strip() for address in value or ()]

    def validate(self, value: list[str]) -> None:
        super().validate(value)
        # Addresses go in as params: django-filter %-formats messages, and an address may hold a %.
        errors = [
            ValidationError("%(address)r: %(error)s", code="invalid_address", params={"address": a, "error": error})
            for a in value
            if (error := address_error(a))
        ]
        if errors:
            raise ValidationError(errors)

    def clean(self, value) -> list[str]:
        return [normalized(address) for address in super().clean(value)]


@extend_schema_field(AddressListField.openapi_schema)
class AddressListFilter(django_filters.Filter):
    """PVs whose address (``field_name``) is any of the given addresses."""

    field_class = AddressListField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("lookup_expr", "in")
        super().__init__(*args, **kwargs)


class StrictBooleanField(forms.NullBooleanField):
    """`true` or `false` (also `True`, `False`, `1`, `0`, as NullBooleanField reads them), or
    nothing; anything else is refused, where NullBooleanField would read it as nothing."""

    widget = forms.TextInput

    def to_python(self, value) -> bool | None:
        if value in self.empty_values:
            return None
        result = super().to_python(value)
        if result is None:
            raise ValidationError("Enter true or false.", code="invalid")
        return result


class StrictBooleanFilter(django_filters.BooleanFilter):
    """A boolean filter that refuses a value it does not know (BooleanFilter ignores it:
    read_only=maybe would select every PV). A BooleanFilter still, so the schema says boolean."""

    field_class = StrictBooleanField


class PVSetChoiceField(django_filters.fields.ModelChoiceField):
    """A PV set by id, refused when its stored filters are no longer valid (a tag deleted since):
    a clear error where the set is used, rather than a failure while selecting."""

    def validate(self, value) -> None:
        super().validate(value)
        if value is not None:
            try:
                pv_set_condition(value)
            except InvalidPVSet as exc:
                # As params: django-filter %-formats messages, and a set's name may hold a %.
                raise ValidationError("%(problem)s", code="invalid_pv_set", params={"problem": str(exc)}) from None


class PVSetFilter(django_filters.ModelChoiceFilter):
    field_class = PVSetChoiceField


class PVFilterSet(django_filters.FilterSet):
    """Select PVs by setpoint, readback or config address, tags (all of them), tag group, device
    prefix, read-only flag or text. Every address given, in a filter or in the text, is read in
    the registry's spelling (``ca://X`` is ``X``, ``PVA://X`` is ``pva://X``)."""

    pv = AddressListFilter(field_name="setpoint_address", label="Setpoint address (repeatable)")
    readback = AddressListFilter(field_name="readback_address", label="Readback address (repeatable)")
    config = AddressListFilter(field_name="config_address", label="Config address (repeatable)")
    # Each tag is its own join, so a PV must carry every tag given and appears once.
    tag = django_filters.ModelMultipleChoiceFilter(
        field_name="tags",
        queryset=Tag.objects.select_related("group"),  # choices show "group: tag"
        conjoined=True,
        distinct=False,
        label="Tag id (repeatable; PVs with all of them)",
    )
    tag_group = django_filters.ModelChoiceFilter(
        queryset=TagGroup.objects.all(),
        method="filter_tag_group",
        label="Tag group id (PVs with any tag of the group)",
    )
    device = django_filters.CharFilter(field_name="device", lookup_expr="istartswith", label="Device prefix")
    read_only = StrictBooleanFilter(label="Read-only (true) or writable (false)")
    protocol = django_filters.ChoiceFilter(
        choices=CHOICES,
        method="filter_protocol",
        label="Protocol: ca or pva (PVs with any address on it)",
    )
    search = django_filters.CharFilter(method="filter_search", label="Text in addresses, device or description")
    pv_set = PVSetFilter(
        queryset=PVSet.objects.all(), method="filter_pv_set", label="PV set id (the PVs of a saved set)"
    )

    class Meta:
        model = PV
        fields: list[str] = []

    @extend_schema_field(OpenApiTypes.INT)  # the group's id, for the API schema
    def filter_tag_group(self, queryset, name, value):
        return queryset.in_tag_group(value)

    def filter_protocol(self, queryset, name, value):
        return queryset.using_protocol(value)

    def filter_search(self, queryset, name, value):
        text = value.strip()
        return queryset.search(text) if text else queryset

    @extend_schema_field(OpenApiTypes.INT)  # the set's id, for the API schema
    def filter_pv_set(self, queryset, name, value):
        return queryset.filter(pv_set_condition(value))


# The filters a PV set keeps (PVSet.filters): its explicit list replaces `pv`, and a set never
# refers to another set.
PV_SET_FILTERS = ("tag", "tag_group", "device", "search", "read_only", "protocol")


class InvalidPVSet(ValueError):
    """A PV set whose stored filters PVFilterSet no longer accepts (a tag deleted since)."""


def pv_set_condition(pv_set: PVSet) -> Q:
    """The condition on PV rows that selects the PVs of `pv_set`: its explicit list, and the PVs
    its filters select if it has any. InvalidPVSet if its filters are no longer valid."""
    members = PVSet.pvs.through.objects.filter(pvset_id=pv_set.pk, pv_id=OuterRef("pk"))
    condition = Q(Exists(members))
    if pv_set.filters:
        filterset = PVFilterSet(data=pv_set.filters, queryset=PV.objects.all())
        if set(pv_set.filters) - set(PV_SET_FILTERS) or not filterset.is_valid():
            problems = filterset.errors.as_text() or "unknown filters"
            raise InvalidPVSet(f"The filters of the PV set “{pv_set.name}” are no longer valid: {problems}")
        condition |= Q(pk__in=filterset.qs.values("pk"))
    return condition
