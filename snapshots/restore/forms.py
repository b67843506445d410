"""Forms of a restore from the pages: which rows of the snapshot page to preview, and the options of
a confirmed restore (as the API's execute takes them)."""

from django import forms

from pvs.filtersets import InvalidPVSet
from pvs.models import PV, PVSet
from pvs.selections import pv_set_pvs


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
    pv_set = forms.ModelChoiceField(
        queryset=PVSet.objects.all(),
        required=False,
        label="Only the PVs of the set",
        empty_label="any PV",
    )

    def clean_pv_set(self):
        pv_set = self.cleaned_data["pv_set"]
        if pv_set is not None:
            try:
                pv_set_pvs(pv_set)
            except InvalidPVSet as exc:
                raise forms.ValidationError(str(exc)) from None
        return pv_set

    def clean(self):
        data = super().clean()
        if data.get("scope") == RestoreScope.CHECKED and not data.get("pv"):
            raise forms.ValidationError("Check at least one row to restore the checked rows.")
        return data

    def limit(self, pvs):
        """`pvs` (a PV queryset, or None for every PV of the snapshot) narrowed to the chosen set's PVs."""
        pv_set = self.cleaned_data.get("pv_set")
        if pv_set is None:
            return pvs
        of_set = pv_set_pvs(pv_set)
        return of_set if pvs is None else pvs.filter(pk__in=of_set.values("pk"))


class ExecuteRestoreForm(forms.Form):
    """The options of a confirmed restore (as the API's execute takes them)."""

    verify = forms.BooleanField(required=False, initial=True, label="Verify the read-backs after writing")
    # Well below the broker's visibility timeout (600 s), after which a running task is redelivered.
    verify_timeout = forms.FloatField(min_value=0.0, max_value=300.0, initial=5.0, label="Verification timeout (s)")
