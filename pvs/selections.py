"""Stored PV selections: the PVFilterSet parameters a schedule, a snapshot job or a restore keeps
to say which PVs it takes."""

from django.db.models import Q

from pvs.filtersets import PV_SET_FILTERS, PVFilterSet, pv_set_condition
from pvs.models import PV, PVSet
from pvs.protocols import CA, PVA, PVA_PREFIX, search_of
from squirrel_site.bulk_sql import in_array, number_array, set_join


class InvalidSelection(ValueError):
    """A stored selection that PVFilterSet no longer accepts (its message says why)."""


def selection_problems(selection) -> dict | str | None:
    """Why `selection` is not a valid PV selection (PVFilterSet parameters), or None."""
    if not isinstance(selection, dict):
        return 'A selection is an object of PV filters, e.g. {"tag": [3]}.'
    filterset = PVFilterSet(data=selection, queryset=PV.objects.all())
    unknown = set(selection) - set(filterset.filters)
    if unknown:
        return f"Unknown filters: {', '.join(sorted(unknown))}."
    if not filterset.is_valid():
        return filterset.errors
    return None


def select_pvs(selection: dict):
    """The PVs a stored selection picks; all PVs when it is empty. InvalidSelection if it is not valid."""
    if not selection:
        return PV.objects.all()
    filterset = PVFilterSet(data=selection, queryset=PV.objects.all())
    if not filterset.is_valid():
        raise InvalidSelection(f"The PV selection is not valid: {filterset.errors.as_text()}")
    return filterset.qs


def pv_set_filters_problems(filters) -> dict | str | None:
    """Why `filters` cannot be a PV set's filters (PV_SET_FILTERS parameters), or None."""
    if not isinstance(filters, dict):
        return 'A PV set\'s filters are an object of PV filters, e.g. {"tag": [3]}.'
    unknown = set(filters) - set(PV_SET_FILTERS)
    if unknown:
        return f"Unknown filters: {', '.join(sorted(map(str, unknown)))} (a set takes {', '.join(PV_SET_FILTERS)})."
    return selection_problems(filters)


def pv_set_pvs(pv_set: PVSet):
    """The PVs of `pv_set` (its explicit list and what its filters select), in registry order.
    pvs.filtersets.InvalidPVSet if its filters are no longer valid."""
    return PV.objects.filter(pv_set_condition(pv_set))


def unsaved_pv_set_pvs(filters: dict, member_ids) -> object:
    """The PVs a set with these (valid) filters and explicit list would hold: a preview before saving."""
    condition = Q(pk__in=in_array(list(member_ids), "bigint")) if member_ids else Q(pk__in=[])
    if filters:
        condition |= Q(pk__in=PVFilterSet(data=filters, queryset=PV.objects.all()).qs.values("pk"))
    return PV.objects.filter(condition)


def selected_ids_array(pvs) -> str:
    """The ids of the PVs `pvs` (a PV queryset) selects, as a bigint[] literal for one
    `column = ANY(%s::bigint[])` parameter of a bulk statement.

    A selection by tag, tag group or PV set is a semi-join of the registry with its links. Inside
    a bulk statement (a compare of two snapshots' values) and with statistics from before the rows
    were written (or none), the planner estimated the values at one row and joined the links to
    them in a nested loop (test_bulk_plans). Read here in a statement of its own, planned without
    nested loops, the selection reaches the bulk statement as a constant array, which PostgreSQL
    looks rows up in by hash whatever the statistics say.
    """
    sql, params = pvs.order_by().values("pk").query.sql_with_params()
    with set_join() as cursor:  # the registry with its tag or set links: two whole sets
        cursor.execute(sql, params)
        return number_array(row[0] for row in cursor.fetchall())


def name_condition(column: str, name: str) -> tuple[str, list]:
    """SQL (and its parameters) for rows whose PV name (`column`, a stored address) holds `name`,
    case-insensitive, as the compare pages' "name" filter means it: ``ca://X`` and ``PVA://X``
    are read in the registry's spelling and hold to that protocol (pvs.protocols.search_of:
    ``ca://SR`` finds ``SR:Q1`` and not ``pva://SR:Q1``); the ORM's twin is pvs.models.address_contains."""
    protocol, text = search_of(name)
    if protocol == PVA:  # "pva://NAME...": the address's start
        return f"{column} ILIKE %s", [f"{_escape_like(text)}%"]
    condition, params = f"{column} ILIKE %s", [f"%{_escape_like(text)}%"]
    if protocol == CA:
        condition += f" AND {column} NOT LIKE %s"
        params.append(f"{_escape_like(PVA_PREFIX)}%")
    return condition, params


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
