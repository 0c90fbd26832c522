"""Users and groups as SCIM resources in the database, with the portal's integrity rules.

- ``userName`` is unique per organisation, compared case-insensitively (409 ``uniqueness``).
- Group members are existing users of the same organisation; anything else is ``invalidValue``.
- Deleting a user removes it from every group (those groups get a new version) and deletes the
  licences given to that user; deleting a group deletes the licences given to that group, never
  its members. Deactivating (``active: false``) touches nothing but ``active``.
- ``meta.version`` counts changes of the resource's own attributes; a write that changes
  nothing keeps the version. ``User.groups`` and members' ``$ref`` are derived on reading.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable
from typing import Any

from sandbox.portal.db import Database, Organisation, now
from sandbox.portal.errors import not_found, precondition_failed
from sandbox.portal.filter_syntax import Node
from sandbox.portal.filters import Predicate, index_lookup, resolve
from sandbox.portal.resources import check_required
from sandbox.portal.schemas import GROUPS, ResourceKind
from sandbox.portal.scim_rows import (
    LOOKUP_SQL,
    TABLE,
    Stored,
    check_unique,
    delete_resource,
    etag_matches,
    insert_row,
    load_related,
    member_ids,
    row_to_stored,
    set_members,
    take_members,
    update_row,
)


class ScimStore:
    """Create, read, replace, patch, delete and query users and groups of one organisation."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # --- reading ----------------------------------------------------------------------------

    def get(self, org: Organisation, kind: ResourceKind, rid: str) -> Stored:
        with self.db.connection() as conn:
            stored = self._load(conn, org, kind, rid)
            load_related(conn, [stored])
        return stored

    def query(
        self,
        org: Organisation,
        kind: ResourceKind,
        *,
        node: Node | None,
        predicate: Predicate | None,
        start_index: int,
        count: int,
        base_url: str,
        sort_by: str | None = None,
        descending: bool = False,
        with_related: bool = True,
    ) -> tuple[int, list[Stored]]:
        """``(totalResults, the page)``; ``start_index`` is 1-based."""
        table = TABLE[kind.name]
        offset = start_index - 1
        with self.db.connection() as conn:
            if predicate is None and sort_by is None:
                total = conn.execute(
                    f"SELECT COUNT(*) FROM {table} WHERE org_id = ?",  # noqa: S608
                    (org.id,),
                ).fetchone()[0]
                rows = conn.execute(
                    f"SELECT * FROM {table} WHERE org_id = ? ORDER BY seq LIMIT ? OFFSET ?",  # noqa: S608
                    (org.id, count, offset),
                ).fetchall()
                page = [row_to_stored(kind, row) for row in rows]
            else:
                total, page = self._scan(
                    conn,
                    org=org,
                    kind=kind,
                    node=node,
                    predicate=predicate,
                    offset=offset,
                    count=count,
                    base_url=base_url,
                    sort_by=sort_by,
                    descending=descending,
                )
            if with_related:
                load_related(conn, page)
        return int(total), page

    def _scan(
        self,
        conn: sqlite3.Connection,
        *,
        org: Organisation,
        kind: ResourceKind,
        node: Node | None,
        predicate: Predicate | None,
        offset: int,
        count: int,
        base_url: str,
        sort_by: str | None,
        descending: bool,
    ) -> tuple[int, list[Stored]]:
        table = TABLE[kind.name]
        sql = f"SELECT * FROM {table} WHERE org_id = ?"  # noqa: S608
        params: list[Any] = [org.id]
        lookup = index_lookup(kind, node) if node is not None else None
        if lookup is not None:
            clauses = []
            for name, key in lookup:
                clause, values = LOOKUP_SQL[name](org.id, key)
                clauses.append(clause)
                params.extend(values)
            sql += " AND (" + " OR ".join(clauses) + ")"
        sql += " ORDER BY seq"
        needs_related = predicate is not None and _refers_to_related(kind, node)
        matches: list[Stored] = []
        total = 0
        for row in conn.execute(sql, params):
            stored = row_to_stored(kind, row)
            if predicate is not None:
                if needs_related:
                    load_related(conn, [stored])
                if not predicate(stored.render(base_url)):
                    continue
            total += 1
            if sort_by is not None or offset < total <= offset + count:
                matches.append(stored)
        if sort_by is None:
            return total, matches
        ref = resolve(kind, sort_by)
        compared = ref.compared

        def sort_key(stored: Stored) -> tuple[int, Any]:
            values = ref.values(stored.render(base_url))
            if not values:
                return (1, "")
            value = values[0]
            if isinstance(value, str) and not compared.case_exact:
                value = value.casefold()
            return (0, value)

        present = [s for s in matches if sort_key(s)[0] == 0]
        absent = [s for s in matches if sort_key(s)[0] == 1]
        present.sort(key=sort_key, reverse=descending)
        ordered = present + absent
        return total, ordered[offset : offset + count]

    # --- writing ----------------------------------------------------------------------------

    def create(self, org: Organisation, kind: ResourceKind, doc: dict[str, Any]) -> Stored:
        with self.db.write() as conn:
            members = take_members(conn, org, kind, doc)
            stored = Stored(kind, str(uuid.uuid4()), doc, 1, now(), "")
            stored.last_modified = stored.created
            check_unique(conn, org, stored)
            insert_row(conn, org, stored)
            if members is not None:
                set_members(conn, stored.id, [], members)
        return self.get(org, kind, stored.id)

    def replace(
        self,
        org: Organisation,
        kind: ResourceKind,
        rid: str,
        doc: dict[str, Any],
        *,
        if_match: str | None,
    ) -> Stored:
        return self.update(org, kind, rid, lambda _current: doc, if_match=if_match)

    def update(
        self,
        org: Organisation,
        kind: ResourceKind,
        rid: str,
        change: Callable[[dict[str, Any]], dict[str, Any]],
        *,
        if_match: str | None,
    ) -> Stored:
        """Apply ``change`` to the current document (with ``members`` for a group) and keep the
        result; ``If-Match`` is checked against the current version first (412)."""
        with self.db.write() as conn:
            current = self._load(conn, org, kind, rid)
            if if_match is not None and not etag_matches(if_match, current.etag):
                raise precondition_failed(
                    f"{kind.name} {rid} has changed: its version is {current.etag}"
                )
            old_members: list[str] = []
            before = dict(current.doc)
            if kind is GROUPS:
                old_members = member_ids(conn, rid)
                before["members"] = [{"value": m, "type": "User"} for m in old_members]
            after = change(json.loads(json.dumps(before)))
            check_required(kind, after)
            members = take_members(conn, org, kind, after)
            new_members = members if members is not None else []
            before.pop("members", None)
            if after == before and new_members == old_members:
                return self.get(org, kind, rid)
            updated = Stored(kind, rid, after, current.version + 1, current.created, now())
            check_unique(conn, org, updated)
            update_row(conn, org, updated)
            if kind is GROUPS:
                set_members(conn, rid, old_members, new_members)
        return self.get(org, kind, rid)

    def delete(
        self, org: Organisation, kind: ResourceKind, rid: str, *, if_match: str | None
    ) -> None:
        with self.db.write() as conn:
            current = self._load(conn, org, kind, rid)
            if if_match is not None and not etag_matches(if_match, current.etag):
                raise precondition_failed(
                    f"{kind.name} {rid} has changed: its version is {current.etag}"
                )
            delete_resource(conn, kind, rid)

    # --- helpers ----------------------------------------------------------------------------

    def _load(
        self, conn: sqlite3.Connection, org: Organisation, kind: ResourceKind, rid: str
    ) -> Stored:
        row = conn.execute(
            f"SELECT * FROM {TABLE[kind.name]} WHERE id = ? AND org_id = ?",  # noqa: S608
            (rid, org.id),
        ).fetchone()
        if row is None:
            raise not_found(f"no {kind.name} with id {rid!r} in this organisation")
        return row_to_stored(kind, row)


def _refers_to_related(kind: ResourceKind, node: Node | None) -> bool:
    related = "members" if kind is GROUPS else "groups"
    return node is not None and related in repr(node).lower()
