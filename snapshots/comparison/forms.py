"""Forms of the compare and drift pages and API: what to compare, tolerance overrides, row filters,
sorting, the page; which snapshot drift is measured against.

The comparison's PV selection (pv_set, tag, tag_group, device, search, pv) is
pvs.filtersets.PVFilterSet's, so it means the same there as in every other list; the rest is
comparison-specific. CompareForm has the PV set as a field too, for the page to offer the saved
sets as a list (PVFilterSet applies it).
"""

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.http import QueryDict

from pvs.filtersets import PVFilterSet
from pvs.models import PV, PVSet
from snapshots.capture.forms import ArchiveTimeField
from snapshots.capture.models import Severity, Snapshot
from snapshots.comparison.archive import AGAINST, SNAPSHOT, archive_comparison_refusal
from snapshots.comparison.drift import golden_snapshot
from snapshots.comparison.nway import MAX_COLUMNS, NWayComparison
from snapshots.comparison.rows import SORT_CHOICES, Comparison
from snapshots.comparison.rules import ComparisonStatus
from squirrel_site.pages import PAGE_SIZE

LIVE = "live"
MAX_PAGE_SIZE = 1000
# The largest page whose OFFSET PostgreSQL can take (a bigint) at any page size: past the end of
# every comparison, so it shows no rows; a larger number was a 500 (bigint out of range).
MAX_PAGE = models.BigIntegerField.MAX_BIGINT // MAX_PAGE_SIZE


class SnapshotField(forms.Field):
    """A snapshot id (or, with `allow_live`, "live", which cleans to None)."""

    def __init__(self, *, allow_live: bool = False, **kwargs):
        self.allow_live = allow_live
        # The query parameter, for the API schema (squirrel_site.schema.form_parameters).
        self.openapi_schema = (
            {"oneOf": [{"type": "integer"}, {"type": "string", "enum": [LIVE]}]} if allow_live else {"type": "integer"}
        )
        super().__init__(**kwargs)

    def to_python(self, value):
        text = str(value or "").strip()
        if not text or (self.allow_live and text.lower() == LIVE):
            return None
        try:
            pk = int(text)
        except ValueError:
            hint = ' or "live"' if self.allow_live else ""
            raise ValidationError(f"Enter a snapshot id{hint}.", code="invalid") from None
        snapshot = Snapshot.objects.for_list().filter(pk=pk).first()
        if snapshot is None:
            raise ValidationError(f"Snapshot {pk} does not exist.", code="does_not_exist")
        return snapshot


class CheckboxField(forms.BooleanField):
    """A checkbox or a boolean parameter: `on` (what a browser sends), `true`, `1`, or nothing /
    `false`, `0`, `off`; anything else is refused (BooleanField reads any text as true)."""

    TRUE, FALSE = ("on", "true", "1"), ("", "off", "false", "0")
    widget = forms.TextInput  # the raw text: CheckboxInput reads any text as true before to_python

    def to_python(self, value) -> bool:
        if value in (True, False, None):
            return bool(value)
        text = str(value).strip().lower()
        if text in self.TRUE:
            return True
        if text in self.FALSE:
            return False
        raise ValidationError("Enter true or false.", code="invalid")


class CompareForm(forms.Form):
    """What to compare, tolerance overrides, row filters, sorting and the page."""

    a = SnapshotField(help_text="The reference snapshot's id.")
    b = SnapshotField(allow_live=True, required=False, help_text='Another snapshot\'s id, or "live" (the default).')
    abs_tol = forms.FloatField(min_value=0, required=False, help_text="Absolute tolerance for every PV.")
    rel_tol = forms.FloatField(min_value=0, required=False, help_text="Relative tolerance for every PV (0.01 = 1%).")
    differences_only = CheckboxField(required=False, help_text="Hide equal rows and rows within tolerance.")
    status = forms.MultipleChoiceField(
        choices=ComparisonStatus.choices, required=False, help_text="Show only these statuses (repeatable)."
    )
    severity = forms.TypedChoiceField(
        choices=Severity.choices[1:],
        coerce=int,
        empty_value=None,
        required=False,
        help_text="Least alarm severity on either side: 1 MINOR, 2 MAJOR, 3 INVALID.",
    )
    name = forms.CharField(max_length=100, required=False, strip=True, help_text="Text in the PV name.")
    pv_set = forms.ModelChoiceField(
        queryset=PVSet.objects.all(),
        required=False,
        label="PV set",
        empty_label="any PV",
        help_text="Only the PVs of this saved PV set (its id).",
    )
    sort = forms.ChoiceField(
        choices=SORT_CHOICES,
        required=False,
        help_text="name, device, delta, status or severity; a leading - sorts descending.",
    )
    page = forms.IntegerField(min_value=1, max_value=MAX_PAGE, required=False)
    page_size = forms.IntegerField(min_value=1, max_value=MAX_PAGE_SIZE, required=False)

    def comparison(self, pvs=None) -> Comparison:
        """The Comparison these (valid) parameters ask for, with `pvs` as the registry selection."""
        data = self.cleaned_data
        return Comparison(a=data["a"], b=data["b"], sort=data["sort"] or "name", **self.row_filters(pvs))

    def row_filters(self, pvs=None) -> dict:
        """The RowFilters (tolerance overrides and filters) of these (valid) parameters, as
        keywords, with `pvs` as the registry selection."""
        data = self.cleaned_data
        return {
            "abs_tolerance": data["abs_tol"],
            "rel_tolerance": data["rel_tol"],
            "pvs": pvs,
            "name": data["name"],
            "min_severity": data["severity"],
            "statuses": frozenset(data["status"]),
            "differences_only": data["differences_only"],
        }

    @property
    def page_number(self) -> int:
        return self.cleaned_data.get("page") or 1

    @property
    def rows_per_page(self) -> int:
        return self.cleaned_data.get("page_size") or PAGE_SIZE


class SnapshotListField(forms.Field):
    """Repeatable snapshot ids or "live" (`b=3&b=4&b=live`): the columns of an N-way comparison,
    1 to MAX_COLUMNS of them, at most one "live"; none given is the live values alone."""

    widget = forms.MultipleHiddenInput  # reads every value of the parameter
    openapi_schema = {
        "type": "array",
        "maxItems": MAX_COLUMNS,
        "items": {"oneOf": [{"type": "integer"}, {"type": "string", "enum": [LIVE]}]},
    }

    def to_python(self, value) -> list[Snapshot | None]:
        if value in (None, "", [], ()):
            return [None]
        values = [value] if isinstance(value, str) else list(value)
        if len(values) > MAX_COLUMNS:
            raise ValidationError(f"Compare at most {MAX_COLUMNS} columns with the reference.", code="max_columns")
        one = SnapshotField(allow_live=True, required=False)
        columns, errors = [], []
        for item in values:
            try:
                columns.append(one.clean(item))
            except ValidationError as error:
                errors.extend(error.error_list)
        if errors:
            raise ValidationError(errors)
        if sum(column is None for column in columns) > 1:
            raise ValidationError("Live values can be one column only.", code="live_twice")
        return columns

    def validate(self, value) -> None:
        pass  # to_python checked every value; none given means live


class NWayForm(CompareForm):
    """CompareForm with `b` repeatable: the reference `a` against up to MAX_COLUMNS columns."""

    b = SnapshotListField(
        required=False,
        help_text=f'Up to {MAX_COLUMNS} columns: snapshot ids, or "live" once (repeatable; "live" alone by default).',
    )
    sort = forms.ChoiceField(
        choices=[("name", "name"), ("-name", "name, descending")],
        required=False,
        help_text="name, or -name for descending.",
    )

    def comparison(self, pvs=None) -> NWayComparison:
        data = self.cleaned_data
        return NWayComparison(
            reference=data["a"],
            columns=tuple(data["b"]),
            descending=data["sort"] == "-name",
            **self.row_filters(pvs),
        )


class DriftForm(forms.Form):
    """Which snapshot drift is measured against: the newest golden one unless given."""

    snapshot = SnapshotField(required=False, help_text="A snapshot id; the newest golden snapshot by default.")

    def clean_snapshot(self):
        snapshot = self.cleaned_data["snapshot"] or golden_snapshot()
        if snapshot is None:
            raise ValidationError("There is no golden snapshot: choose one with snapshot=<id>.", code="no_golden")
        return snapshot


def pv_selection(data) -> tuple[PVFilterSet, object]:
    """(the PVFilterSet of `data`, its PV queryset or None when it selects nothing in particular)."""
    filterset = PVFilterSet(data=data, queryset=PV.objects.all())
    if not filterset.is_valid():
        return filterset, None
    given = any(data.get(name) not in (None, "") for name in filterset.filters)
    return filterset, filterset.qs if given else None


def without_blanks(data) -> QueryDict:
    """`data` without its empty values: a form's "any" option sends `status=&tag=`, which means no
    filter, not an invalid status or tag (repeatable parameters refuse an empty value)."""
    kept = QueryDict(mutable=True)
    for key in data:
        values = data.getlist(key) if hasattr(data, "getlist") else [data[key]]
        values = [value for value in values if str(value).strip() != ""]
        if values:
            kept.setlist(key, values)
    return kept


def compare_parameters(data, form_class=CompareForm) -> tuple[CompareForm, Comparison | None, dict]:
    """(form, comparison, errors by field) for query parameters `data`; comparison None if invalid.
    `form_class` NWayForm gives an NWayComparison."""
    data = without_blanks(data)
    form = form_class(data)
    filterset, pvs = pv_selection(data)
    valid = form.is_valid() & filterset.is_valid()
    return form, form.comparison(pvs) if valid else None, field_errors(filterset.form, form)


def is_nway(data) -> bool:
    """True if query parameters `data` ask for more than one column (`b` given twice or more)."""
    return len(without_blanks(data).getlist("b")) > 1


def nway_parameters(data) -> tuple[NWayForm, NWayComparison | None, dict]:
    """compare_parameters for an N-way comparison."""
    return compare_parameters(data, NWayForm)


def field_errors(*forms_: forms.Form) -> dict[str, list[str]]:
    """The forms' error messages by field name ("__all__" for the form as a whole)."""
    errors = {}
    for form in forms_:
        for field, problems in form.errors.get_json_data().items():
            messages = errors.setdefault(field, [])
            # A field both forms check (pv_set) is reported once.
            messages.extend(problem["message"] for problem in problems if problem["message"] not in messages)
    return errors


class ArchiveComparisonForm(forms.Form):
    """Compare with the archive at a time (snapshots.comparison.archive): snapshot `a` against the
    archive at `at`, or the archive at `at` against live values."""

    a = forms.ModelChoiceField(queryset=Snapshot.objects.all(), label="Snapshot", widget=forms.HiddenInput)
    at = ArchiveTimeField(
        label="Archive at",
        widget=forms.DateTimeInput(
            attrs={"placeholder": "YYYY-MM-DD HH:MM:SS", "autocomplete": "off", "maxlength": 32},
            format="%Y-%m-%d %H:%M:%S",
        ),
        help_text="YYYY-MM-DD HH:MM[:SS], 24-hour, in the server's time zone: each PV's last archived sample "
        "at or before it.",
    )
    against = forms.ChoiceField(choices=AGAINST, initial=SNAPSHOT, label="Compare")

    def __init__(self, *args, **kwargs):
        # On the compare page beside its own form, whose `a` is #id_a: ids of their own.
        kwargs.setdefault("auto_id", "archive_%s")
        super().__init__(*args, **kwargs)

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        refusal = archive_comparison_refusal(data["a"], data["at"])
        if refusal:
            self.add_error("at", refusal)
        return data
