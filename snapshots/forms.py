"""Forms of the snapshot pages: take a snapshot, choose what to restore, confirm a restore."""

from django import forms

from pvs.models import PV
from snapshots.jobs import select_pvs, selection_problems
from snapshots.models import SnapshotMode, SnapshotTag
from tags.models import Tag, TagGroup


class TakeSnapshotForm(forms.Form):
    """A snapshot job's parameters, as the API takes them; the PV selection is PVFilterSet's."""

    title = forms.CharField(max_length=200)
    comment = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    mode = forms.ChoiceField(choices=SnapshotMode.choices, initial=SnapshotMode.HYBRID)
    tags = forms.ModelMultipleChoiceField(
        queryset=SnapshotTag.objects.all(), required=False, widget=forms.CheckboxSelectMultiple
    )
    tag = forms.ModelMultipleChoiceField(
        queryset=Tag.objects.select_related("group"), required=False, label="PVs with the tags",
        help_text="PVs carrying all the chosen tags; nothing chosen and no other filter: every PV.",
    )  # fmt: skip
    tag_group = forms.ModelChoiceField(
        queryset=TagGroup.objects.all(), required=False, label="PVs in the tag group", empty_label="any"
    )
    device = forms.CharField(required=False, max_length=100, label="PVs of devices starting with")
    search = forms.CharField(required=False, max_length=100, label="PVs matching the text")

    SELECTION_FIELDS = ("tag", "tag_group", "device", "search")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        if not user.is_superuser:
            # Protected tags (golden) are an administrator's decision.
            self.fields["tags"].queryset = SnapshotTag.objects.filter(protected=False)

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        selection = self.selection()
        problems = selection_problems(selection)
        if problems:
            raise forms.ValidationError(f"The PV selection is not valid: {problems}")
        if not select_pvs(selection).exists():
            raise forms.ValidationError("No PV matches this selection.")
        return data

    def selection(self) -> dict:
        """The chosen PV filters as stored in a snapshot job (PVFilterSet parameters)."""
        data = self.cleaned_data
        selection = {}
        if data.get("tag"):
            selection["tag"] = [tag.pk for tag in data["tag"]]
        if data.get("tag_group"):
            selection["tag_group"] = data["tag_group"].pk
        for name in ("device", "search"):
            if data.get(name, "").strip():
                selection[name] = data[name].strip()
        return selection

    def job_data(self) -> dict:
        data = self.cleaned_data
        return {
            "title": data["title"], "comment": data["comment"], "mode": data["mode"],
            "tags": [tag.name for tag in data["tags"]], "selection": self.selection(),
        }  # fmt: skip


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
        required=False, label="Also write PVs already within tolerance",
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
    verify_timeout = forms.FloatField(
        min_value=0.0, max_value=300.0, initial=5.0, label="Verification timeout (s)"
    )
