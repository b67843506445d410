"""The form of a snapshot job (take a snapshot), on the snapshot list page and in the API."""

from django import forms
from django.conf import settings

from pvs.models import PVSet
from pvs.selections import select_pvs, selection_problems
from snapshots.capture.models import MANAGE_PROTECTED_TAGS, SnapshotMode, SnapshotTag
from snapshots.capture.services import archive_time_refusal
from tags.models import Tag, TagGroup


class ArchiveTimeField(forms.DateTimeField):
    """A date and time as people type it (ISO, 24-hour, local time): Django's formats, and nothing
    with a control character or longer than any of them (which Django's parser lets through)."""

    MAX_LENGTH = 32

    def to_python(self, value):
        if isinstance(value, str) and (len(value) > self.MAX_LENGTH or not value.isprintable()):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)


class TakeSnapshotForm(forms.Form):
    """A snapshot job's parameters, as the API takes them; the PV selection is PVFilterSet's."""

    title = forms.CharField(max_length=200)
    comment = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    mode = forms.ChoiceField(choices=SnapshotMode.choices, initial=SnapshotMode.HYBRID)
    at = ArchiveTimeField(
        required=False,
        label="Archived at",
        widget=forms.DateTimeInput(
            attrs={"placeholder": "YYYY-MM-DD HH:MM:SS", "autocomplete": "off", "maxlength": 32},
            format="%Y-%m-%d %H:%M:%S",
        ),
        help_text=f"From the archive only: the time the values are of, as YYYY-MM-DD HH:MM[:SS], 24-hour, "
        f"local time ({settings.TIME_ZONE}). Each PV's last archived sample at or before it.",
    )
    tags = forms.ModelMultipleChoiceField(
        queryset=SnapshotTag.objects.all(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Label the snapshot",
        help_text="Snapshot tags, to find the snapshot later (not which PVs it saves).",
    )
    pv_set = forms.ModelChoiceField(
        queryset=PVSet.objects.all(),
        required=False,
        label="PVs of the saved set",
        empty_label="no set: the filters below",
        help_text="A saved PV set (PV sets page); the filters below narrow it further.",
    )
    tag = forms.ModelMultipleChoiceField(
        queryset=Tag.objects.select_related("group").order_by("group__name", "name"),
        required=False,
        widget=forms.CheckboxSelectMultiple(attrs={"class": "choice-list"}),
        label="PVs with all these PV tags",
        help_text="PVs carrying every checked tag; no set, no tag and no other filter: every PV.",
    )
    tag_group = forms.ModelChoiceField(
        queryset=TagGroup.objects.all(), required=False, label="PVs in the tag group", empty_label="any"
    )
    device = forms.CharField(required=False, max_length=100, label="PVs of devices starting with")
    search = forms.CharField(required=False, max_length=100, label="PVs matching the text")

    SELECTION_FIELDS = ("pv_set", "tag", "tag_group", "device", "search")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        if not user.has_perm(MANAGE_PROTECTED_TAGS):
            # Protected tags (golden) are an administrator's decision.
            self.fields["tags"].queryset = SnapshotTag.objects.filter(protected=False)

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        at, archive = data.get("at"), data.get("mode") == SnapshotMode.ARCHIVE
        if archive and at is None:
            self.add_error("at", "A snapshot from the archive needs the time it is of.")
            return data
        if at is not None and not archive:
            self.add_error("at", "A time is for a snapshot from the archive only: choose that mode, or clear it.")
            return data
        refusal = archive_time_refusal(at) if archive else None
        if refusal:
            self.add_error("at", refusal)
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
        if data.get("pv_set"):
            selection["pv_set"] = data["pv_set"].pk
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
        job = {
            "title": data["title"],
            "comment": data["comment"],
            "mode": data["mode"],
            "tags": [tag.name for tag in data["tags"]],
            "selection": self.selection(),
        }
        if data.get("at") is not None:
            job["at"] = data["at"].isoformat()
        return job


class EditSnapshotForm(forms.Form):
    """A snapshot's title, comment and tags, edited on its page. Protected tags (golden) are
    offered only to users who may manage them; for the others they stay as they are."""

    title = forms.CharField(max_length=200)
    comment = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    tags = forms.ModelMultipleChoiceField(
        queryset=SnapshotTag.objects.all(), required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args, snapshot, user, **kwargs):
        current = list(snapshot.tags.all())
        initial = {"title": snapshot.title, "comment": snapshot.comment, "tags": [tag.pk for tag in current]}
        # Prefixed: the snapshot page has other forms (filters, restore) with ids of their own.
        super().__init__(*args, initial=initial, prefix="edit", **kwargs)
        self.may_manage_protected = user.has_perm(MANAGE_PROTECTED_TAGS)
        # The protected tags the snapshot keeps whatever this user sends.
        self.kept_tags = [] if self.may_manage_protected else [tag for tag in current if tag.protected]
        if not self.may_manage_protected:
            self.fields["tags"].queryset = SnapshotTag.objects.filter(protected=False)

    def new_tags(self) -> list:
        """The tags the snapshot will carry: those chosen, and the protected ones kept."""
        return list(self.cleaned_data["tags"]) + self.kept_tags
