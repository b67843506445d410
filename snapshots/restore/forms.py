"""Forms of a restore from the pages: which rows of the snapshot page to preview, and the options of
a confirmed restore (as the API's execute takes them)."""

from django import forms

from pvs.models import PV


class RestoreScope:
    """Which rows of the snapshot page a restore preview covers."""

    CHECKED = "checked"
    FILTERED = "filtered"
    ALL = "all"
    choices = [(CHECKED, "The checked rows"), (FILTERED, "Every row the filters select"), (ALL, "Every PV")]


class RestoreSelectionForm(forms.Form):
    """What to preview: the checked PVs, the page's filtered rows or the whole snapshot."""

    scope = forms.ChoiceField(choices=RestoreScope.choices)
    pv = forms.ModelMultipleChoiceField(queryset=PV.objects.all(), required=False)
    include_unchanged = forms.BooleanField(
        required=False,
        label="Also write PVs already within tolerance",
    )

    def clean(self):
        data = super().clean()
        if data.get("scope") == RestoreScope.CHECKED and not data.get("pv"):
            raise forms.ValidationError("Check at least one row to restore the checked rows.")
        return data


class ExecuteRestoreForm(forms.Form):
    """The options of a confirmed restore (as the API's execute takes them)."""

    verify = forms.BooleanField(required=False, initial=True, label="Verify the read-backs after writing")
    # Well below the broker's visibility timeout (600 s), after which a running task is redelivered.
    verify_timeout = forms.FloatField(min_value=0.0, max_value=300.0, initial=5.0, label="Verification timeout (s)")
