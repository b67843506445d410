"""Changes to the PV registry, shared by the API, the admin and the commands.

Each function takes a whole selection and runs set-based SQL, so 50,000 PVs cost a few
statements, never a row per PV in Python, and records one audit entry in the same transaction
(squirrel_site.audit): what was done, how many PVs, and up to AUDIT_ADDRESSES of their addresses.
Field values reaching create_pvs and update_pvs are already validated (pvs.api.serializers or a
model form); `registry_problems` is the validation that needs the registry.
"""

from collections import defaultdict
from collections.abc import Mapping, Sequence

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from pvs.importers import ImportReport, import_pvs
from pvs.models import PV
from pvs.validators import validate_tolerance
from squirrel_site import audit
from squirrel_site.audit import AuditAction
from squirrel_site.bulk_sql import copy_rows, delete_rows, in_array, update_rows
from tags.models import Tag
from tags.registry import RegistryChanged, registry_write

# An audit entry lists at most this many addresses, whatever the number of PVs it is about.
AUDIT_ADDRESSES = 100

_PV_TABLE = PV._meta.db_table
_LINKS = PV.tags.through
_LINK_TABLE = _LINKS._meta.db_table


def _record(
    actor, action: str, via: str, summary: str, addresses: Sequence[str], count: int, *, target=None, **details
):
    details = {"count": count, "addresses": list(addresses[:AUDIT_ADDRESSES]), **details}
    audit.record(actor, action, summary, via=via, target=target, details=details)


def _record_pvs(actor, action: str, via: str, verb: str, pvs: Sequence[tuple[int, str]], **details):
    """Record `verb` done to `pvs`, given as (id, setpoint address); one PV is the entry's target."""
    addresses = [address for _, address in pvs]
    if len(pvs) == 1:
        target = PV(id=pvs[0][0], setpoint_address=addresses[0])
        _record(actor, action, via, f"{verb} PV {addresses[0]}", addresses, 1, target=target, **details)
    else:
        _record(actor, action, via, f"{verb} {len(pvs)} PVs", addresses, len(pvs), **details)


def _link(pairs) -> None:
    """Create PV-tag links from (pv id, tag id) pairs, with COPY."""
    copy_rows(_LINKS, ["pv_id", "tag_id"], pairs)


def touch_pvs_losing_tags(sender, tags, **kwargs) -> None:
    """PVs about to lose `tags` (tags.services.tags_deleting) move their updated_at, as with any
    change of their tags. Connected in PvsConfig.ready()."""
    PV.objects.filter(Exists(_LINKS.objects.filter(pv_id=OuterRef("pk"), tag__in=tags))).update(
        updated_at=timezone.now()
    )


def _tag_labels(tag_ids) -> list[str]:
    return [str(tag) for tag in Tag.objects.filter(id__in=tag_ids).select_related("group")]


# ---------------------------------------------------------------------------------------------
# Validation against the registry


def registry_problems(items: Sequence[Mapping]) -> dict[int, dict[str, list[str]]]:
    """What the registry has against `items`, by item index and field.

    Items are validated PV fields (`tags`: tag ids); an item with `id` changes that PV, the
    others are new PVs. Problems: a setpoint address another PV has or another item claims, a PV
    id that does not exist or comes twice, a tag id that does not exist. Two queries, whatever
    the number of items.
    """
    problems: dict[int, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    ids = [item["id"] for item in items if "id" in item]
    addresses = [item["setpoint_address"] for item in items if "setpoint_address" in item]
    holders, found = {}, set()
    if ids or addresses:
        matches = PV.objects.filter(
            Q(id__in=in_array(ids, "bigint")) | Q(setpoint_address__in=in_array(addresses, "text"))
        ).values_list("id", "setpoint_address")
        for pv_id, address in matches:
            holders[address] = pv_id
            found.add(pv_id)

    first_item_of: dict[int, int] = {}
    for index, item in enumerate(items):
        if "id" not in item:
            continue
        pv_id = item["id"]
        if pv_id in first_item_of:
            problems[index]["id"].append(f"PV {pv_id} is also item {first_item_of[pv_id]}.")
        first_item_of.setdefault(pv_id, index)
        if pv_id not in found:
            problems[index]["id"].append(f"No PV with id {pv_id}.")

    claimed_by: dict[str, int] = {}
    for index, item in enumerate(items):
        if "setpoint_address" not in item:
            continue
        address = item["setpoint_address"]
        if address in claimed_by:
            problems[index]["setpoint_address"].append(f"Item {claimed_by[address]} has this setpoint address too.")
        claimed_by.setdefault(address, index)
        holder = holders.get(address)
        # Even if this request renames the holder: the unique index is checked row by row within
        # one UPDATE, so swapping or shifting addresses in one request could fail half way.
        if holder is not None and holder != item.get("id"):
            problems[index]["setpoint_address"].append(f"PV {holder} has this setpoint address.")

    wanted = sorted({tag_id for item in items for tag_id in item.get("tags", ())})
    known = set()
    if wanted:
        known = set(Tag.objects.filter(id__in=in_array(wanted, "bigint")).values_list("id", flat=True))
    for index, item in enumerate(items):
        unknown = sorted(set(item.get("tags", ())) - known)
        if unknown:
            problems[index]["tags"].append(f"No tag with id {', '.join(map(str, unknown))}.")
    return {index: dict(fields) for index, fields in problems.items()}


# ---------------------------------------------------------------------------------------------
# Create, update, delete


def create_pvs(items: Sequence[Mapping], *, actor, via: str) -> list[int]:
    """Create PVs from validated field values (`tags`: tag ids); fields an item does not give
    take their model defaults. Returns the new ids in the order of `items`."""
    if not items:
        return []
    with registry_write():
        ids = PV.objects.create_from_rows(items, now=timezone.now())
        _link((pv_id, tag_id) for pv_id, item in zip(ids, items, strict=True) for tag_id in item.get("tags", ()))
        created = [(pv_id, item["setpoint_address"]) for pv_id, item in zip(ids, items, strict=True)]
        _record_pvs(actor, AuditAction.PVS_CREATED, via, "Created", created)
    return ids


def update_pvs(changes: Mapping[int, Mapping], *, actor, via: str) -> int:
    """Apply validated changes to PVs by id: {id: {field: value, `tags`: tag ids replacing the
    PV's tags}}. Only PVs that really change are written (and get a new updated_at, which the
    monitor watches); returns how many. For one PV the audit entry holds each changed field as
    [old, new]; for several, the names of the fields that changed."""
    names = sorted({name for change in changes.values() for name in change} - {"tags"})
    with registry_write():
        before = {
            row["id"]: row
            for row in PV.objects.select_for_update()
            .filter(id__in=in_array(list(changes), "bigint"))
            .values("id", *{"setpoint_address", *names})
        }
        if missing := sorted(changes.keys() - before.keys()):
            listed = ", ".join(map(str, missing))
            raise RegistryChanged(f"PVs {listed} were deleted meanwhile; nothing was stored.")
        old_tags = _tags_of([pv_id for pv_id, change in changes.items() if "tags" in change])
        diffs = {}
        for pv_id, change in changes.items():
            fields = {name: value for name, value in change.items() if name != "tags"}
            diff = audit.field_changes(before[pv_id], fields)
            if "tags" in change and set(change["tags"]) != old_tags[pv_id]:
                diff["tags"] = [sorted(old_tags[pv_id]), sorted(change["tags"])]
            if diff:
                diffs[pv_id] = diff
        if not diffs:
            return 0
        now = timezone.now()
        after = {pv_id: {**before[pv_id], **changes[pv_id]} for pv_id in diffs}
        rows = [(pv_id, *(row[name] for name in names), now) for pv_id, row in after.items()]
        update_rows(PV, [*names, "updated_at"], rows)
        retagged = {pv_id: set(changes[pv_id]["tags"]) for pv_id, diff in diffs.items() if "tags" in diff}
        _replace_tags(retagged, old_tags)
        changed = sorted((row["setpoint_address"], pv_id) for pv_id, row in after.items())
        changed = [(pv_id, address) for address, pv_id in changed]
        if len(diffs) == 1:
            [diff] = diffs.values()
            if "tags" in diff:
                diff["tags"] = [_tag_labels(tag_ids) for tag_ids in diff["tags"]]
            _record_pvs(actor, AuditAction.PVS_CHANGED, via, "Changed", changed, changes=diff)
        else:
            fields = sorted({name for diff in diffs.values() for name in diff})
            _record_pvs(actor, AuditAction.PVS_CHANGED, via, "Changed", changed, fields=fields)
    return len(diffs)


def _tags_of(pv_ids: Sequence[int]) -> dict[int, set[int]]:
    tags: dict[int, set[int]] = defaultdict(set)
    if pv_ids:
        links = _LINKS.objects.filter(pv_id__in=in_array(pv_ids, "bigint")).values_list("pv_id", "tag_id")
        for pv_id, tag_id in links:
            tags[pv_id].add(tag_id)
    return tags


def _replace_tags(new_tags: Mapping[int, set[int]], old_tags: Mapping[int, set[int]]) -> None:
    """Give each PV exactly its new tags: one DELETE for the links that go, one COPY for the new."""
    gone = [(pv_id, tag_id) for pv_id, tags in new_tags.items() for tag_id in old_tags[pv_id] - tags]
    if gone:
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {_LINK_TABLE} WHERE (pv_id, tag_id) IN "
                "(SELECT * FROM unnest(%s::bigint[], %s::bigint[]))",
                [[pv_id for pv_id, _ in gone], [tag_id for _, tag_id in gone]],
            )
    _link((pv_id, tag_id) for pv_id, tags in new_tags.items() for tag_id in tags - old_tags[pv_id])


def delete_pvs(pvs, *, actor, via: str) -> int:
    """Delete the PVs of the queryset `pvs`; returns how many. Snapshot values, restore previews
    and restore items keep their rows, with the reference to the PV cleared."""
    with transaction.atomic():
        rows = list(pvs.select_for_update().order_by("setpoint_address").values_list("id", "setpoint_address"))
        if not rows:
            return 0
        delete_rows(PV, [pv_id for pv_id, _ in rows])
        _record_pvs(actor, AuditAction.PVS_DELETED, via, "Deleted", rows)
    return len(rows)


# ---------------------------------------------------------------------------------------------
# Curation actions on a selection (the admin's bulk actions)


def _selection_sql(pvs) -> tuple[str, tuple]:
    """The SQL selecting the ids of `pvs`, for use inside one set-based statement."""
    return pvs.order_by().values("id").query.sql_with_params()


def _link_statement(sql: str, pvs, tags) -> tuple[int, int, list[str]]:
    """Run an add/remove statement; (links, PVs touched, up to AUDIT_ADDRESSES of their addresses)."""
    selection, params = _selection_sql(pvs)
    with connection.cursor() as cursor:
        cursor.execute(
            sql.format(links=_LINK_TABLE, pvs=_PV_TABLE, selection=selection)
            + """ SELECT (SELECT count(*) FROM changed), (SELECT count(*) FROM touched),
                         ARRAY(SELECT setpoint_address FROM touched ORDER BY 1 LIMIT %s)""",
            [*params, [tag.id for tag in tags], timezone.now(), AUDIT_ADDRESSES],
        )
        return cursor.fetchone()


def _record_tagging(actor, via: str, verb: str, tags, touched: int, addresses: list[str]) -> None:
    labels = [str(tag) for tag in tags]
    summary = f"{verb} {', '.join(labels)} on {touched} PVs"
    _record(actor, AuditAction.PVS_CHANGED, via, summary, addresses, touched, fields=["tags"], tags=labels)


@transaction.atomic
def add_tags(pvs, tags, *, actor, via: str) -> int:
    """Give every PV in `pvs` each of `tags`; returns how many PV-tag links were created."""
    links, touched, addresses = _link_statement(
        """WITH changed AS (
               INSERT INTO {links} (pv_id, tag_id)
               SELECT sel.id, tag_id FROM ({selection}) AS sel CROSS JOIN unnest(%s::bigint[]) AS tag_id
               ON CONFLICT (pv_id, tag_id) DO NOTHING
               RETURNING pv_id),
           touched AS (
               UPDATE {pvs} SET updated_at = %s WHERE id IN (SELECT pv_id FROM changed)
               RETURNING setpoint_address)""",
        pvs,
        tags,
    )
    if links:
        _record_tagging(actor, via, "Added", tags, touched, addresses)
    return links


@transaction.atomic
def remove_tags(pvs, tags, *, actor, via: str) -> int:
    """Take each of `tags` off every PV in `pvs`; returns how many links were removed."""
    links, touched, addresses = _link_statement(
        """WITH changed AS (
               DELETE FROM {links} WHERE pv_id IN ({selection}) AND tag_id = ANY(%s::bigint[])
               RETURNING pv_id),
           touched AS (
               UPDATE {pvs} SET updated_at = %s WHERE id IN (SELECT pv_id FROM changed)
               RETURNING setpoint_address)""",
        pvs,
        tags,
    )
    if links:
        _record_tagging(actor, via, "Removed", tags, touched, addresses)
    return links


def _set_fields(pvs, values: dict, *, actor, via: str, summary: str) -> int:
    """Set `values` on the PVs of `pvs` that differ and record them; `summary` has a {pvs}
    placeholder for "PV <address>" or "<n> PVs". Returns how many changed."""
    changing = pvs.exclude(**values)
    with transaction.atomic():
        addresses = changing.order_by("setpoint_address").values_list("setpoint_address", flat=True)
        addresses = list(addresses[:AUDIT_ADDRESSES])
        count = changing.update(updated_at=timezone.now(), **values)
        if count:
            summary = summary.format(pvs=f"PV {addresses[0]}" if count == 1 else f"{count} PVs")
            _record(actor, AuditAction.PVS_CHANGED, via, summary, addresses, count, values=values)
    return count


def set_tolerances(
    pvs, *, abs_tolerance: float | None = None, rel_tolerance: float | None = None, actor, via: str
) -> int:
    """Set the absolute and/or relative tolerance of every PV in `pvs`; returns how many changed."""
    values = {}
    if abs_tolerance is not None:
        validate_tolerance(abs_tolerance)
        values["abs_tolerance"] = abs_tolerance
    if rel_tolerance is not None:
        validate_tolerance(rel_tolerance)
        values["rel_tolerance"] = rel_tolerance
    if not values:
        return 0
    return _set_fields(pvs, values, actor=actor, via=via, summary="Set the tolerances of {pvs}")


def set_read_only(pvs, read_only: bool, *, actor, via: str) -> int:
    """Mark every PV in `pvs` read-only (never restored) or writable; returns how many changed."""
    summary = "Marked {pvs} read-only" if read_only else "Marked {pvs} writable"
    return _set_fields(pvs, {"read_only": read_only}, actor=actor, via=via, summary=summary)


# ---------------------------------------------------------------------------------------------
# Import


@transaction.atomic
def import_registry(filename: str, content: bytes | str, *, actor, via: str, dry_run: bool, **options) -> ImportReport:
    """Check and, unless `dry_run`, apply a registry file (pvs.importers.import_pvs, which takes
    `macros` and `include_loader` as `options`); an import that writes is recorded."""
    report = import_pvs(filename, content, dry_run=dry_run, **options)
    if report.applied:
        _record(
            actor,
            AuditAction.PVS_IMPORTED,
            via,
            f"Imported {filename}: {report.new} new, {report.updated} updated PVs",
            report.addresses,
            report.new + report.updated,
            file=filename,
            new=report.new,
            updated=report.updated,
            unchanged=report.unchanged,
            new_tags=report.new_tags[:AUDIT_ADDRESSES],
        )
    return report
