"""A PV's archived history for the API and the pages' charts: `GET /api/v1/pvs/<id>/history/`.

The samples come from the Archiver Appliance through `pvs/archiver.py` (the one owner of that
system); this module only bounds the request and writes the answer. The window is bounded
(HISTORY_MAX_WINDOW) and so is the answer (HISTORY_MAX_SAMPLES): a request beyond either is a 400
that says how to narrow it, never a slow answer of megabytes. No archiver configured, or one that
does not answer, is a 503; an address the archiver does not archive, a 404 with its reason.
"""

from datetime import UTC, datetime, timedelta

from django.utils import timezone
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError

from pvs import archiver
from squirrel_site.epics_values import SPECS, to_json
from squirrel_site.errors import ServiceUnavailable

# The longest window one request covers, and the most samples one answer holds: a chart of a PV
# over a day at 1 Hz is 86,400 samples; beyond this the operator narrows the window.
HISTORY_MAX_WINDOW = timedelta(days=31)
HISTORY_MAX_SAMPLES = 100_000
HISTORY_DEFAULT_WINDOW = timedelta(hours=1)
# Unix time starts here; the archive holds nothing earlier, and a window computed from a time near
# datetime's own limits would overflow.
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(9000, 1, 1, tzinfo=UTC)
SETPOINT, READBACK = "setpoint", "readback"


class HistoryQuerySerializer(serializers.Serializer):
    """The query: the window (`from`, `to`, ISO 8601; the last hour by default, one hour from
    `from` or up to `to` when only one is given) and which of the PV's addresses."""

    from_ = serializers.DateTimeField(required=False, help_text="Start of the window (ISO 8601).")
    to = serializers.DateTimeField(required=False, help_text="End of the window (ISO 8601).")
    address = serializers.ChoiceField(
        choices=[SETPOINT, READBACK], default=SETPOINT, help_text="Which of the PV's addresses."
    )

    kind = serializers.ChoiceField(
        choices=[],
        required=False,
        help_text="The PV's kind when the caller knows it (a snapshot's), which tells an enum's index from an integer.",
    )

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")  # `from` is a Python keyword
        fields["kind"].choices = list(SPECS)  # read when asked, so a kind added to SPECS is taken
        return fields

    def validate(self, attrs):
        start, end = attrs.get("from"), attrs.get("to")
        for name, moment in (("from", start), ("to", end)):
            if moment is not None and not _EARLIEST <= moment < _LATEST:
                raise ValidationError({name: ["Give a time from 1970 to 8999."]})
        if start is None and end is None:
            end = timezone.now()
        if start is None:
            start = end - HISTORY_DEFAULT_WINDOW
        elif end is None:
            end = start + HISTORY_DEFAULT_WINDOW
        if end <= start:
            raise ValidationError({"to": ["`to` must be after `from`."]})
        if end - start > HISTORY_MAX_WINDOW:
            raise ValidationError(
                {"to": [f"The window is longer than {HISTORY_MAX_WINDOW.days} days, the most one request covers."]}
            )
        return {"from": start, "to": end, "address": attrs["address"], "kind": attrs.get("kind")}


class HistorySampleSerializer(serializers.Serializer):
    """One archived sample (for the schema; the view writes plain dicts)."""

    timestamp = serializers.FloatField(help_text="The IOC's timestamp, Unix seconds.")
    value = serializers.JSONField(help_text='A number, a string or an array; "NaN", "Infinity" spelled out.')
    status = serializers.IntegerField(help_text="Alarm status.")
    severity = serializers.IntegerField(help_text="Alarm severity (0 none, 1 minor, 2 major, 3 invalid).")


class HistorySerializer(serializers.Serializer):
    """A PV's archived history over a window."""

    pv = serializers.IntegerField()
    address = serializers.CharField(help_text="The archived address (the PV's setpoint or readback).")
    archiver = serializers.CharField(help_text="The archiver that answered (SQUIRREL_ARCHIVER_URL's name).")
    kind = serializers.CharField(allow_null=True, help_text="The samples' value kind; null when there is none.")
    units = serializers.CharField(allow_blank=True)
    precision = serializers.IntegerField(allow_null=True)
    samples = HistorySampleSerializer(many=True)

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.DateTimeField()
        fields["to"] = serializers.DateTimeField()
        return fields


def history_of(pv, query: dict) -> dict:
    """The answer for `pv` and a validated query; raises the API's 503, 404 or 400."""
    address = pv.setpoint_address if query["address"] == SETPOINT else pv.readback_address
    if not address:
        raise NotFound("This PV has no readback address.")
    if not archiver.archivers():
        raise ServiceUnavailable("No archiver is configured (SQUIRREL_ARCHIVER_URL): there is no history to show.")
    try:
        found = archiver.history(address, query["from"], query["to"], kind=query["kind"])
    except LookupError as error:
        raise NotFound(f"{address} is not archived: {error}") from error
    except archiver.ArchiverError as error:
        raise ServiceUnavailable(f"The archiver did not answer: {error}") from error
    if len(found.samples) > HISTORY_MAX_SAMPLES:
        raise ValidationError(
            {
                "from": [
                    f"The archive holds more than {HISTORY_MAX_SAMPLES} samples of {address} in this "
                    "window, the most one answer holds: choose a shorter window."
                ]
            }
        )
    kinds = {sample.kind for sample in found.samples}
    return {
        "pv": pv.pk,
        "address": found.address,
        "archiver": found.archiver,
        "from": query["from"].isoformat(),
        "to": query["to"].isoformat(),
        "kind": kinds.pop() if len(kinds) == 1 else None,
        "units": found.units or "",
        "precision": found.precision,
        "samples": [
            {
                "timestamp": sample.timestamp,
                "value": to_json(sample.value),
                "status": sample.status,
                "severity": sample.severity,
            }
            for sample in found.samples
        ],
    }
