"""A page of PVs with their tags and tag groups, in one statement whose plan no statistics change.

Django's prefetch of `PV.tags` joins the tags, their groups and the PV-tag links, filters the
links by the page's PV ids and sorts by group and tag name. Without planner statistics (a new
installation, or a registry analyzed while it was empty) the planner guessed each PV id matches
1/200 of the links: at 50,000 PVs it walked the tag groups by name (presorted output) and read
every tag's links, filtering 4,158 rows per tag to keep the page's (160 ms of a 568 ms snapshot
page); asked for the page's ids in one `pv_id = ANY(...)` it read all 116,667 links instead.

Here each of the page's PVs looks up its own links (a LATERAL subquery kept apart by OFFSET 0,
so it runs once per PV with `pv_id = <that PV>`, never merged into a join the planner could
reorder): one PV's share of the links is small under any statistics (1/200 of them with none,
about 2 with fresh ones), so each lookup goes through the links' pv_id index, and the sort comes
after the join, on the page's few hundred rows. The few tags and groups are joined to those
links and sorted as Tag.Meta.ordering says (group name, tag name). Django then fills each PV's
`tags` as its own prefetch would: `pv.tags.all()` in templates, serializers and the admin reads
them. pvs/tests/test_tag_plans.py checks the plan in four statistics states.
"""

from django.db import connection

from squirrel_site.bulk_sql import db_type, number_array
from tags.models import Tag, TagGroup


class PageTags:
    """A prefetch lookup (`prefetch_related("page_tags")`, `"pv__page_tags"` through a foreign
    key) that fills the model's `tags` many-to-many for a page of rows; reading the attribute on
    a PV gives its `tags` manager."""

    def __set_name__(self, owner, name):
        self.model = owner

    def __get__(self, instance, owner=None):
        return self if instance is None else instance.tags

    def is_cached(self, instance) -> bool:
        return "tags" in getattr(instance, "_prefetched_objects_cache", {})

    def get_prefetch_querysets(self, instances, querysets=None):
        """Django's prefetch protocol: the tags of `instances` (one Tag per link, its PV's id in
        `_page_pv_id`), how to match them with their PV, and the cache to fill (`tags`)."""
        if querysets:
            raise ValueError("page_tags loads every tag of each PV: prefetch PV.tags with a queryset instead")
        tags = self.load({instance.pk for instance in instances})
        return tags, _pv_id_of, _pk_of, False, "tags", False

    def load(self, pv_ids) -> list[Tag]:
        """One Tag per link of the PVs `pv_ids`, in Tag.Meta.ordering. (Each tag once with an
        array_agg of its PVs parsed fewer timestamps, but its GROUP BY raised the estimated cost
        without statistics past jit_above_cost: 200 ms of JIT compilation for a 1 ms statement.)"""
        if not pv_ids:
            return []
        quote = connection.ops.quote_name
        relation = self.model._meta.get_field("tags")
        links = quote(relation.remote_field.through._meta.db_table)
        pv_id, tag_id = quote(relation.m2m_column_name()), quote(relation.m2m_reverse_name())
        tag_fields, group_fields = Tag._meta.concrete_fields, TagGroup._meta.concrete_fields
        columns = [f"tag.{quote(f.column)}" for f in tag_fields] + [f"grp.{quote(f.column)}" for f in group_fields]
        tag_table, group_table = quote(Tag._meta.db_table), quote(TagGroup._meta.db_table)
        tag_pk, group_pk = quote(Tag._meta.pk.column), quote(TagGroup._meta.pk.column)
        tag_group, name = quote(Tag._meta.get_field("group").column), quote("name")
        sql = (
            f"SELECT page.pv_id, {', '.join(columns)} "
            f"FROM unnest(%s::{db_type(self.model._meta.pk)}[]) AS page (pv_id) "
            f"CROSS JOIN LATERAL (SELECT {tag_id} FROM {links} WHERE {pv_id} = page.pv_id OFFSET 0) AS link "
            f"JOIN {tag_table} tag ON tag.{tag_pk} = link.{tag_id} "
            f"JOIN {group_table} grp ON grp.{group_pk} = tag.{tag_group} "
            f"ORDER BY grp.{name}, tag.{name}"  # Tag.Meta.ordering
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [number_array(sorted(pv_ids))])
            rows = cursor.fetchall()
        tag_names = [f.attname for f in tag_fields]
        group_names = [f.attname for f in group_fields]
        split = 1 + len(tag_fields)
        groups: dict = {}
        tags = []
        for row in rows:
            group_values = row[split:]
            group = groups.get(group_values[0])
            if group is None:
                group = groups[group_values[0]] = TagGroup.from_db(connection.alias, group_names, group_values)
            tag = Tag.from_db(connection.alias, tag_names, row[1:split])
            tag.group = group
            tag._page_pv_id = row[0]
            tags.append(tag)
        return tags


def _pv_id_of(tag: Tag) -> int:
    return tag._page_pv_id


def _pk_of(instance) -> int:
    return instance.pk
