"""Snapshot values for the API as plain rows: what SnapshotValueSerializer writes, without a
serializer per row.

A page of 50,000 values through SnapshotValueSerializer took 4.7 s: model instances, 21 DRF fields
per row, and psycopg parsing 100,000 timestamps in Python (Django registers a Python loader for
timestamptz). Here PostgreSQL formats the timestamps as DRF would, and each row becomes its dict
as it leaves the cursor. snapshots/tests/test_value_rows.py checks that the result equals the
serializer's for every kind of value and in several time zones.
"""

from django.db.models import CharField, Func
from django.db.models.query import ValuesListIterable
from django.utils import timezone

from squirrel_site import epics_values
from squirrel_site.epics_values import from_columns, to_json


class IsoDateTime(Func):
    """A timestamptz as text, exactly as DRF's DateTimeField writes it in the current time zone:
    ISO 8601, the fraction only when the microseconds are not zero, "Z" for a zero offset,
    otherwise "+HH:MM" or "-HH:MM"."""

    output_field = CharField()

    def as_sql(self, compiler, connection, **extra):
        column, params = compiler.compile(self.source_expressions[0])
        zone = timezone.get_current_timezone_name()
        local, utc = f"({column} AT TIME ZONE %s)", f"({column} AT TIME ZONE 'UTC')"
        offset = f"({local} - {utc})"
        sql = (
            f"to_char({local}, CASE WHEN extract(microseconds FROM {column})::int %% 1000000 = 0"
            f" THEN 'YYYY-MM-DD\"T\"HH24:MI:SS' ELSE 'YYYY-MM-DD\"T\"HH24:MI:SS.US' END)"
            # to_char writes a negative interval's minutes as "-30": format its absolute value.
            f" || CASE WHEN {offset} = interval '0' THEN 'Z'"
            f" WHEN {offset} > interval '0' THEN '+' || to_char({offset}, 'HH24:MI')"
            f" ELSE '-' || to_char(-{offset}, 'HH24:MI') END"
        )
        # The local time, the column in the fraction test, then the offset four times.
        return sql, [*params, zone, *params] + [*params, zone, *params] * 4


# The columns each row is read with, in the order value_json unpacks them.
COLUMNS = (
    "id",
    "pv_id",
    "pv_name",
    "readback_name",
    "value_type",
    "setpoint_num",
    "setpoint_str",
    "setpoint_array",
    "readback_num",
    "readback_str",
    "readback_array",
    "status",
    "severity",
    "timestamp_text",
    "readback_status",
    "readback_severity",
    "readback_timestamp_text",
    "units",
    "precision",
    "enum_labels",
    "source",
    "age",
    "archiver",
    "connected",
    "reason",
)


class _ValueJSONIterable(ValuesListIterable):
    """The rows of a values_list() queryset in COLUMNS order, each turned into its dict as it
    leaves the cursor."""

    def __iter__(self):
        return map(value_json, super().__iter__())


def api_rows(values):
    """The SnapshotValue queryset `values` yielding what SnapshotValueSerializer would (dicts).

    No tuple outlives its row: a page that kept 50,000 tuples had them promoted to the collector's
    oldest generation, and the full collections they caused cost 0.15-0.2 s per page. Dicts that
    hold only numbers, strings and None are not tracked by the collector at all.
    """
    rows = values.annotate(
        timestamp_text=IsoDateTime("timestamp"), readback_timestamp_text=IsoDateTime("readback_timestamp")
    ).values_list(*COLUMNS)
    rows._iterable_class = _ValueJSONIterable  # Django's hook behind values() and values_list()
    return rows


def value_json(row: tuple) -> dict:
    """One row in COLUMNS order as SnapshotValueSerializer represents it (same keys, same order)."""
    (
        id_,
        pv,
        pv_name,
        readback_name,
        value_type,
        setpoint_num,
        setpoint_str,
        setpoint_array,
        readback_num,
        readback_str,
        readback_array,
        status,
        severity,
        timestamp,
        readback_status,
        readback_severity,
        readback_timestamp,
        units,
        precision,
        enum_labels,
        source,
        age,
        archiver,
        connected,
        reason,
    ) = row
    return {
        "id": id_,
        "pv": pv,
        "pv_name": pv_name,
        "readback_name": readback_name,
        "value_type": value_type,
        "setpoint": to_json(from_columns(value_type, setpoint_num, setpoint_str, setpoint_array)),
        "enum_label": epics_values.saved_label(value_type, setpoint_str),
        "readback": to_json(from_columns(value_type, readback_num, readback_str, readback_array)),
        "status": status,
        "severity": severity,
        "timestamp": timestamp,
        "readback_status": readback_status,
        "readback_severity": readback_severity,
        "readback_timestamp": readback_timestamp,
        "units": units,
        "precision": precision,
        "enum_labels": enum_labels,
        "source": source,
        "age": age,
        "archiver": archiver,
        "connected": connected,
        "reason": reason,
    }
