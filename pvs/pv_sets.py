"""Saved PV sets: create, change, add and remove PVs, delete, each audited in the same transaction.

The page, the admin and the API call these. A set's explicit list may hold the whole registry
(tens of thousands of PVs): addresses are looked up in one query and members written with one
INSERT ... SELECT unnest() or one DELETE, never a statement per PV.
"""

from collections.abc import Iterable, Sequence

from django.db import connection, transaction
from django.db.models import ProtectedError

from pvs.models import PV, PVSet
from pvs.protocols import normalized
from pvs.selections import pv_set_filters_problems
from pvs.validators import address_error
from squirrel_site import audit
from squirrel_site.audit import AuditAction

# How many problem addresses a message lists before "and N more".
SHOWN_PROBLEMS = 10


class PVSetError(ValueError):
    """A change to a PV set that is refused; the message says why (nothing was written)."""


def _listed(items: Sequence[str]) -> str:
    shown = ", ".join(items[:SHOWN_PROBLEMS])
    more = len(items) - SHOWN_PROBLEMS
    return f"{shown} and {more} more" if more > 0 else shown


def parse_addresses(text: str) -> list[str]:
    """Setpoint addresses from text, one per line (commas and spaces also separate them), each
    once, in the order given. PVSetError naming the malformed ones."""
    return checked_addresses(text.replace(",", " ").split())


def checked_addresses(given: Iterable[str]) -> list[str]:
    """The addresses in the registry's spelling (``ca://X`` is ``X``), each once, in the order
    given. PVSetError naming the malformed ones."""
    addresses = list(dict.fromkeys(given))
    bad = [address for address in addresses if address_error(address)]
    if bad:
        raise PVSetError(f"Not valid addresses: {_listed(bad)}.")
    return list(dict.fromkeys(map(normalized, addresses)))


def pv_ids(addresses: Sequence[str]) -> list[int]:
    """The ids of the PVs with these setpoint addresses, in one query; PVSetError naming the
    addresses the registry does not have."""
    if not addresses:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, setpoint_address FROM {PV._meta.db_table} WHERE setpoint_address = ANY(%s::text[])",
            [list(addresses)],
        )
        found = {address: pv_id for pv_id, address in cursor.fetchall()}
    unknown = [address for address in addresses if address not in found]
    if unknown:
        raise PVSetError(f"Not in the registry: {_listed(unknown)}.")
    return [found[address] for address in addresses]


def member_addresses(pv_set: PVSet) -> list[str]:
    """The setpoint addresses of the set's explicit list, sorted."""
    return list(pv_set.pvs.order_by("setpoint_address").values_list("setpoint_address", flat=True))


_MEMBERS = PVSet.pvs.through._meta.db_table


def _insert_members(pv_set_id: int, ids: Iterable[int]) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {_MEMBERS} (pvset_id, pv_id) SELECT %s, unnest(%s::bigint[]) ON CONFLICT DO NOTHING",
            [pv_set_id, list(ids)],
        )
        return cursor.rowcount


def _delete_members(pv_set_id: int, ids: Iterable[int] | None = None) -> int:
    with connection.cursor() as cursor:
        if ids is None:
            cursor.execute(f"DELETE FROM {_MEMBERS} WHERE pvset_id = %s", [pv_set_id])
        else:
            cursor.execute(
                f"DELETE FROM {_MEMBERS} WHERE pvset_id = %s AND pv_id = ANY(%s::bigint[])", [pv_set_id, list(ids)]
            )
        return cursor.rowcount


def _check(pv_set: PVSet) -> None:
    problems = pv_set_filters_problems(pv_set.filters)
    if problems:
        raise PVSetError(f"The filters are not valid: {problems}")
    if PVSet.objects.filter(name=pv_set.name).exclude(pk=pv_set.pk).exists():
        raise PVSetError(f"A PV set named “{pv_set.name}” exists already.")


def _settings(pv_set: PVSet) -> dict:
    return {"name": pv_set.name, "description": pv_set.description, "filters": pv_set.filters}


@transaction.atomic
def save_pv_set(
    pv_set: PVSet, *, member_ids: Sequence[int] | None = None, actor, via: str, changed: Iterable[str] = ()
) -> PVSet:
    """Create or change `pv_set` (name, description, filters as set on the instance) and, when
    `member_ids` is given, make its explicit list exactly those PVs. PVSetError if the filters or
    the name are refused; nothing is written then."""
    _check(pv_set)
    created = pv_set.pk is None
    if created and pv_set.created_by_id is None and getattr(actor, "is_authenticated", False):
        pv_set.created_by = actor
    pv_set.save()
    details: dict = {"created": created, "changed": list(changed), **_settings(pv_set)}
    if member_ids is not None:
        wanted = set(member_ids)
        current = set(pv_set.pvs.values_list("pk", flat=True)) if not created else set()
        removed, added = current - wanted, wanted - current
        if removed:
            _delete_members(pv_set.pk, removed)
        if added:
            _insert_members(pv_set.pk, added)
        details.update(added=len(added), removed=len(removed))
        if (added or removed) and "pvs" not in details["changed"]:
            details["changed"].append("pvs")
    if created:
        summary = f"PV set “{pv_set.name}” created"
    elif details["changed"]:
        summary = f"PV set “{pv_set.name}” changed ({', '.join(details['changed'])})"
    else:
        summary = f"PV set “{pv_set.name}” saved unchanged"
    action = AuditAction.PV_SET_CREATED if created else AuditAction.PV_SET_CHANGED
    audit.record(actor, action, summary, via=via, target=pv_set, details=details)
    return pv_set


@transaction.atomic
def change_members(pv_set: PVSet, *, add: Sequence[int] = (), remove: Sequence[int] = (), actor, via: str) -> dict:
    """Add PVs to and remove PVs from the set's explicit list (a PV in both is removed);
    {"added": n, "removed": m}, counting only real changes (a PV already listed is not added twice)."""
    pv_set = PVSet.objects.select_for_update().get(pk=pv_set.pk)
    added = _insert_members(pv_set.pk, set(add) - set(remove)) if add else 0
    removed = _delete_members(pv_set.pk, remove) if remove else 0
    counts = {"added": added, "removed": removed}
    if added or removed:
        pv_set.save(update_fields=["updated_at"])
        audit.record(
            actor,
            AuditAction.PV_SET_CHANGED,
            f"PV set “{pv_set.name}”: {added} PVs added, {removed} removed",
            via=via,
            target=pv_set,
            details={"changed": ["pvs"], **counts},
        )
    return counts


@transaction.atomic
def delete_pv_set(pv_set: PVSet, *, actor, via: str) -> None:
    """Delete the set (its PVs stay in the registry). PVSetError while a schedule uses it."""
    audit.record(
        actor,
        AuditAction.PV_SET_DELETED,
        f"PV set “{pv_set.name}” deleted",
        via=via,
        target=pv_set,
        details={"deleted": True, **_settings(pv_set), "pv_count": pv_set.pvs.count()},
    )
    try:
        with transaction.atomic():
            pv_set.delete()
    except ProtectedError as exc:
        users = ", ".join(sorted(f"“{obj}”" for obj in exc.protected_objects))
        raise PVSetError(f"The PV set “{pv_set.name}” is used by {users}: choose another set there first.") from None
