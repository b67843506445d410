"""Forms for the PV admin: bulk-action parameters and the registry import page."""

import re

from django import forms
from django.core.exceptions import ValidationError

from pvs.validators import validate_tolerance
from tags.models import Tag


class TagChoiceForm(forms.Form):
    """Which tags a bulk add/remove action applies."""

    tags = forms.ModelMultipleChoiceField(
        queryset=Tag.objects.select_related("group"),
        widget=forms.SelectMultiple(attrs={"size": 12}),
    )


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
