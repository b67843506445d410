"""Export of the PV registry as CSV in the format pvs.importers reads back unchanged."""

from collections import defaultdict

from pvs.importers import FIELD_COLUMNS, SETPOINT_HEADER
from pvs.models import PV
from squirrel_site import safe_csv
from tags.models import TagGroup

CHUNK_SIZE = 5000


def export_pvs_csv(queryset, stream) -> int:
    """Write the PVs of `queryset` as registry CSV to the text `stream`; return the rows written.

    Three queries whatever the size: tag groups, the PVs' tags, the PVs (streamed in chunks).
    """
    groups = list(TagGroup.objects.order_by("name").values_list("name", flat=True))
    tags: dict[int, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    links = (
        PV.tags.through.objects.filter(pv__in=queryset)
        .order_by("tag__name")
        .values_list("pv_id", "tag__group__name", "tag__name")
    )
    for pv_id, group, tag in links.iterator(chunk_size=CHUNK_SIZE):
        tags[pv_id][group].append(tag)

    # "\n" keeps each row one write, which Django's OutputWrapper (command stdout) passes through.
    writer = safe_csv.writer(stream, lineterminator="\n")
    writer.writerow([SETPOINT_HEADER, *(column.header for column in FIELD_COLUMNS), *groups])
    values = queryset.order_by("setpoint_address").values_list(
        "id", "setpoint_address", *(column.field for column in FIELD_COLUMNS)
    )
    count = 0
    for pv_id, setpoint, *fields in values.iterator(chunk_size=CHUNK_SIZE):
        pv_tags = tags.get(pv_id, {})
        writer.writerow(
            [
                setpoint,
                *(column.format(value) for column, value in zip(FIELD_COLUMNS, fields, strict=True)),
                *(",".join(pv_tags.get(group, ())) for group in groups),
            ]
        )
        count += 1
    return count
