"""Export of the PV registry as CSV, or as an EPICS request (.req) file of setpoint addresses, in
the formats pvs.importers reads back unchanged. Addresses are written as the registry stores them
(Channel Access bare, pvAccess as pva://NAME), so an export re-imports to the same PVs."""

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


def export_pvs_req(queryset, stream) -> int:
    """Write the setpoint addresses of `queryset`, one per line, as a request (.req) file to the
    text `stream`; return the lines written. A .req file carries addresses only: the CSV keeps
    everything else."""
    stream.write("# Squirrel PV registry: setpoint addresses (pva://NAME is pvAccess, NAME Channel Access)\n")
    count = 0
    addresses = queryset.order_by("setpoint_address").values_list("setpoint_address", flat=True)
    for address in addresses.iterator(chunk_size=CHUNK_SIZE):
        stream.write(address + "\n")
        count += 1
    return count
