"""Forms for the PV admin (bulk-action parameters, the registry import page) and for PV sets (their
page and the admin)."""

import re

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from pvs.models import PVSet
from pvs.protocols import CHOICES
from pvs.pv_sets import PVSetError, member_addresses, parse_addresses, pv_ids, save_pv_set
from pvs.selections import pv_set_filters_problems, unsaved_pv_set_pvs
from pvs.validators import validate_tolerance
from tags.models import Tag, TagGroup


class TagChoiceForm(forms.Form):
    """Which tags a bulk add/remove action applies."""

    tags = forms.ModelMultipleChoiceField(
        queryset=Tag.objects.select_related("group"),
        widget=forms.SelectMultiple(attrs={"size": 12}),
    )


class PVSetChoiceForm(forms.Form):
    """Which PV set a bulk add/remove action changes."""

    pv_set = forms.ModelChoiceField(queryset=PVSet.objects.all(), label="PV set")


class ToleranceForm(forms.Form):
    """New tolerances for a bulk action; a blank field leaves that tolerance as it is."""

    abs_tolerance = forms.FloatField(required=False, validators=[validate_tolerance], label="Absolute tolerance")
    rel_tolerance = forms.FloatField(
        required=False,
        validators=[validate_tolerance],
        label="Relative tolerance",
        help_text="A fraction of the saved value: 0.01 is 1%.",
    )

    def clean(self):
        data = super().clean()
        if data.get("abs_tolerance") is None and data.get("rel_tolerance") is None and not self.errors:
            raise ValidationError("Give an absolute tolerance, a relative tolerance, or both.")
        return data


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """A file field that accepts several files (a .req file with its includes)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if not data and not self.required:
            return []
        if isinstance(data, (list, tuple)):
            return [single(item, initial) for item in data]
        return [single(data, initial)]


_MACRO_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


class RegistryImportForm(forms.Form):
    """Upload a registry file (CSV or .req plus the .req files it includes) and macros."""

    file = forms.FileField(help_text="A CSV file in SLAC's format, or an EPICS request (.req) file.")
    includes = MultipleFileField(required=False, help_text="The files a .req file includes, if any (select several).")
    macros = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60, "placeholder": "P=SIM:\nAREA=LINAC"}),
        help_text="Macro values for .req files, one NAME=VALUE per line.",
    )

    def clean_macros(self) -> dict[str, str]:
        macros = {}
        for number, line in enumerate(self.cleaned_data["macros"].splitlines(), start=1):
            if not line.strip():
                continue
            match = _MACRO_RE.match(line.strip())
            if not match:
                raise ValidationError(f"Line {number}: expected NAME=VALUE, got {line.strip()!r}.")
            macros[match.group(1)] = match.group(2)
        return macros


class PVSetForm(forms.ModelForm):
    """A PV set as people edit it (its page and the admin): name, description, the filters as
    fields, and the explicit list as setpoint addresses, one per line. `save_set` saves it
    through pvs.pv_sets (audited); nothing is stored unless the whole form is valid."""

    tag = forms.ModelMultipleChoiceField(
        queryset=Tag.objects.select_related("group").order_by("group__name", "name"),
        required=False,
        widget=forms.CheckboxSelectMultiple(attrs={"class": "choice-list"}),
        label="PVs with all these tags",
    )
    tag_group = forms.ModelChoiceField(
        queryset=TagGroup.objects.all(), required=False, empty_label="none", label="PVs with any tag of the group"
    )
    device = forms.CharField(required=False, max_length=100, label="PVs of devices starting with")
    search = forms.CharField(required=False, max_length=100, label="PVs matching the text")
    read_only = forms.ChoiceField(
        choices=[("", "read-only or not"), ("false", "writable only"), ("true", "read-only only")],
        required=False,
        label="Of the filtered PVs, keep",
    )
    protocol = forms.ChoiceField(
        choices=[("", "any protocol"), *CHOICES],
        required=False,
        label="PVs with an address on",
    )
    pv_list = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "cols": 60, "placeholder": "SIM:MAG:Q1:CURRENT:SP\nSIM:RF:C1:AMPL:SP"}),
        label="And these PVs",
        help_text="Setpoint addresses, one per line (pva://NAME for pvAccess): in the set whatever the filters.",
    )

    FILTER_FIELDS = ("tag", "tag_group", "device", "search", "read_only", "protocol")

    class Meta:
        model = PVSet
        fields = ["name", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2, "cols": 60})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.member_ids: list[int] | None = None
        if self.instance.pk is not None and not self.is_bound:
            filters = self.instance.filters or {}
            for name in self.FILTER_FIELDS:
                if name in filters:
                    value = filters[name]
                    self.initial[name] = str(value).lower() if isinstance(value, bool) else value
            self.initial["pv_list"] = "\n".join(member_addresses(self.instance))

    def filters(self) -> dict:
        """The chosen filters as PVSet.filters keeps them (PVFilterSet parameters)."""
        data = self.cleaned_data
        filters: dict = {}
        if data.get("tag"):
            filters["tag"] = sorted(tag.pk for tag in data["tag"])
        if data.get("tag_group"):
            filters["tag_group"] = data["tag_group"].pk
        for name in ("device", "search"):
            if data.get(name, "").strip():
                filters[name] = data[name].strip()
        if data.get("read_only"):
            filters["read_only"] = data["read_only"] == "true"
        if data.get("protocol"):
            filters["protocol"] = data["protocol"]
        return filters

    def clean_pv_list(self) -> list[str]:
        try:
            addresses = parse_addresses(self.cleaned_data["pv_list"])
        except PVSetError as exc:
            raise ValidationError(str(exc)) from None
        if len(addresses) > settings.API_MAX_ITEMS:
            raise ValidationError(f"A set lists at most {settings.API_MAX_ITEMS} PVs; this lists {len(addresses)}.")
        try:
            self.member_ids = pv_ids(addresses)
        except PVSetError as exc:
            raise ValidationError(str(exc)) from None
        return addresses

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        filters = self.filters()
        if not filters and not self.member_ids:
            raise ValidationError("Choose filters, list PVs, or both: this set would select no PV.")
        problems = pv_set_filters_problems(filters)
        if problems:
            raise ValidationError(f"The filters are not valid: {problems}")
        return data

    def preview_count(self) -> int:
        """How many PVs the set would hold as the (valid) form stands, without saving it."""
        return unsaved_pv_set_pvs(self.filters(), self.member_ids or []).count()

    def save_set(self, *, actor, via: str) -> PVSet:
        """Save the set and its explicit list (pvs.pv_sets.save_pv_set, which audits it)."""
        pv_set, filters = self.instance, self.filters()
        changed = [name for name in self.changed_data if name in self._meta.fields]
        if pv_set.pk is not None and filters != pv_set.filters:
            changed.append("filters")
        pv_set.filters = filters
        try:
            return save_pv_set(pv_set, member_ids=self.member_ids, actor=actor, via=via, changed=changed)
        except PVSetError as exc:
            # A set of the same name saved meanwhile: a form error, nothing stored.
            self.add_error(None, str(exc))
            raise
