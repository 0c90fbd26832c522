"""Users and groups as SCIM resources in the database, with the portal's integrity rules.

- ``userName`` is unique per organisation, compared case-insensitively (409 ``uniqueness``).
- Group members are existing users of the same organisation; anything else is ``invalidValue``.
- Deleting a user removes it from every group (those groups get a new version) and deletes the
  licences given to that user; deleting a group deletes the licences given to that group, never
  its members. Deactivating (``active: false``) touches nothing but ``active``.
- ``meta.version`` counts changes of the resource's own attributes; a write that changes
  nothing keeps the version. ``User.groups`` and members' ``display`` are derived on reading.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sandbox.portal.db import Database, Organisation, now
from sandbox.portal.errors import invalid_value, not_found, precondition_failed, uniqueness
from sandbox.portal.filters import Node, Predicate, index_lookup, resolve
from sandbox.portal.resources import check_required, render
from sandbox.portal.schemas import GROUPS, USERS, ResourceKind

_TABLE = {"User": "users", "Group": "groups"}
_MEMBERS_OF_GROUPS = (
    "SELECT m.group_id AS owner, m.user_id AS rid, u.display_name AS display "
    "FROM group_members m JOIN users u ON u.id = m.user_id"
)
_GROUPS_OF_USERS = (
    "SELECT m.user_id AS owner, m.group_id AS rid, g.display_name AS display "
    "FROM group_members m JOIN groups g ON g.id = m.group_id"
)


@dataclass
class Stored:
    """One resource row with what is derived from other rows."""

    kind: ResourceKind
    id: str
    doc: dict[str, Any]
    version: int
    created: str
    last_modified: str
    #: Group: [(user id, display name)]; User: [(group id, display name)]; None: not loaded
    related: list[tuple[str, str | None]] | None = field(default=None)

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'

    def render(self, base_url: str) -> dict[str, Any]:
        location = f"{base_url}{self.kind.endpoint}/{self.id}"
        meta = {
            "resourceType": self.kind.name,
            "created": self.created,
            "lastModified": self.last_modified,
            "location": location,
            "version": self.etag,
        }
        extra: dict[str, Any] = {}
        if self.related:
            if self.kind is GROUPS:
                # no "display": RFC 7643 makes it read-only and clients compare members
                # with what they sent
                extra["members"] = [
                    _reference(base_url, "Users", rid, None, "User") for rid, _ in self.related
                ]
            else:
                extra["groups"] = [
                    _reference(base_url, "Groups", rid, display, "direct")
                    for rid, display in self.related
                ]
        return render(self.kind, self.id, self.doc, meta, extra)


def _reference(
    base: str, endpoint: str, rid: str, display: str | None, kind: str
) -> dict[str, Any]:
    ref: dict[str, Any] = {"value": rid, "$ref": f"{base}/{endpoint}/{rid}", "type": kind}
    if display:
        ref["display"] = display
    return ref


def etag_matches(header: str, etag: str) -> bool:
    """Whether an ``If-Match``/``If-None-Match`` list names ``etag`` (weakness ignored)."""
    if header.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == bare for tag in header.split(","))


class ScimStore:
    """Create, read, replace, patch, delete and query users and groups of one organisation."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # --- reading ----------------------------------------------------------------------------

    def get(self, org: Organisation, kind: ResourceKind, rid: str) -> Stored:
        with self.db.connection() as conn:
            stored = self._load(conn, org, kind, rid)
            self._load_related(conn, [stored])
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
        table = _TABLE[kind.name]
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
                page = [self._row(kind, row) for row in rows]
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
                self._load_related(conn, page)
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
        table = _TABLE[kind.name]
        sql = f"SELECT * FROM {table} WHERE org_id = ?"  # noqa: S608
        params: list[Any] = [org.id]
        lookup = index_lookup(kind, node) if node is not None else None
        if lookup is not None:
            clauses = []
            for name, key in lookup:
                clause, values = _LOOKUP_SQL[name](org.id, key)
                clauses.append(clause)
                params.extend(values)
            sql += " AND (" + " OR ".join(clauses) + ")"
        sql += " ORDER BY seq"
        needs_related = predicate is not None and _refers_to_related(kind, node)
        matches: list[Stored] = []
        total = 0
        for row in conn.execute(sql, params):
            stored = self._row(kind, row)
            if predicate is not None:
                if needs_related:
                    self._load_related(conn, [stored])
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
            members = self._take_members(conn, org, kind, doc)
            stored = Stored(kind, str(uuid.uuid4()), doc, 1, now(), "")
            stored.last_modified = stored.created
            self._check_unique(conn, org, stored)
            self._insert(conn, org, stored)
            if members is not None:
                self._set_members(conn, stored.id, [], members)
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
                old_members = self._member_ids(conn, rid)
                before["members"] = [{"value": m, "type": "User"} for m in old_members]
            after = change(json.loads(json.dumps(before)))
            check_required(kind, after)
            members = self._take_members(conn, org, kind, after)
            new_members = members if members is not None else []
            before.pop("members", None)
            if after == before and new_members == old_members:
                return self.get(org, kind, rid)
            updated = Stored(kind, rid, after, current.version + 1, current.created, now())
            self._check_unique(conn, org, updated)
            self._update_row(conn, org, updated)
            if kind is GROUPS:
                self._set_members(conn, rid, old_members, new_members)
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
            f"SELECT * FROM {_TABLE[kind.name]} WHERE id = ? AND org_id = ?",  # noqa: S608
            (rid, org.id),
        ).fetchone()
        if row is None:
            raise not_found(f"no {kind.name} with id {rid!r} in this organisation")
        return self._row(kind, row)

    @staticmethod
    def _row(kind: ResourceKind, row: sqlite3.Row) -> Stored:
        return Stored(
            kind,
            row["id"],
            json.loads(row["doc"]),
            row["version"],
            row["created"],
            row["last_modified"],
        )

    def _load_related(self, conn: sqlite3.Connection, page: list[Stored]) -> None:
        if not page:
            return
        by_id = {s.id: s for s in page}
        for stored in page:
            stored.related = []
        # only "?" placeholders are formatted into these statements
        marks = ",".join("?" * len(by_id))
        if page[0].kind is GROUPS:
            sql = f"{_MEMBERS_OF_GROUPS} WHERE m.group_id IN ({marks}) ORDER BY m.rowid"
        else:
            sql = f"{_GROUPS_OF_USERS} WHERE m.user_id IN ({marks}) ORDER BY g.seq"
        for row in conn.execute(sql, list(by_id)):
            related = by_id[row["owner"]].related
            assert related is not None
            related.append((row["rid"], row["display"]))

    @staticmethod
    def _member_ids(conn: sqlite3.Connection, group_id: str) -> list[str]:
        rows = conn.execute(
            "SELECT user_id FROM group_members WHERE group_id = ? ORDER BY rowid", (group_id,)
        )
        return [r[0] for r in rows]

    @staticmethod
    def _take_members(
        conn: sqlite3.Connection, org: Organisation, kind: ResourceKind, doc: dict[str, Any]
    ) -> list[str] | None:
        """Pop ``members`` from a group document and check they are users of ``org``."""
        if kind is not GROUPS:
            return None
        members = doc.pop("members", None) or []
        ids: list[str] = []
        for member in members:
            if member.get("type") not in (None, "User"):
                raise invalid_value(
                    f"member {member['value']!r} has type {member['type']!r}: "
                    "only users can be members of a group in this portal"
                )
            if member["value"] not in ids:
                ids.append(member["value"])
        known = existing_user_ids(conn, org, ids)
        missing = [i for i in ids if i not in known]
        if missing:
            raise invalid_value(
                f"members must be users of this organisation; unknown: {', '.join(missing[:5])}"
            )
        return ids

    @staticmethod
    def _check_unique(conn: sqlite3.Connection, org: Organisation, stored: Stored) -> None:
        if stored.kind is not USERS:
            return
        row = conn.execute(
            "SELECT id FROM users WHERE org_id = ? AND user_name_key = ? AND id != ?",
            (org.id, stored.doc["userName"].casefold(), stored.id),
        ).fetchone()
        if row is not None:
            raise uniqueness(f"userName {stored.doc['userName']!r} is already taken")

    @staticmethod
    def _insert(conn: sqlite3.Connection, org: Organisation, stored: Stored) -> None:
        doc = stored.doc
        if stored.kind is USERS:
            conn.execute(
                "INSERT INTO users(org_id, id, user_name_key, external_id, display_name, doc, "
                "version, created, last_modified) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    org.id,
                    stored.id,
                    doc["userName"].casefold(),
                    doc.get("externalId"),
                    user_display_name(doc),
                    json.dumps(doc),
                    stored.version,
                    stored.created,
                    stored.last_modified,
                ),
            )
            _index_emails(conn, org, stored.id, doc)
        else:
            conn.execute(
                "INSERT INTO groups(org_id, id, display_name, display_name_key, external_id, doc, "
                "version, created, last_modified) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    org.id,
                    stored.id,
                    doc["displayName"],
                    doc["displayName"].casefold(),
                    doc.get("externalId"),
                    json.dumps(doc),
                    stored.version,
                    stored.created,
                    stored.last_modified,
                ),
            )

    @staticmethod
    def _update_row(conn: sqlite3.Connection, org: Organisation, stored: Stored) -> None:
        doc = stored.doc
        if stored.kind is USERS:
            conn.execute(
                "UPDATE users SET user_name_key = ?, external_id = ?, display_name = ?, doc = ?, "
                "version = ?, last_modified = ? WHERE id = ?",
                (
                    doc["userName"].casefold(),
                    doc.get("externalId"),
                    user_display_name(doc),
                    json.dumps(doc),
                    stored.version,
                    stored.last_modified,
                    stored.id,
                ),
            )
            conn.execute("DELETE FROM user_emails WHERE user_id = ?", (stored.id,))
            _index_emails(conn, org, stored.id, doc)
        else:
            conn.execute(
                "UPDATE groups SET display_name = ?, display_name_key = ?, external_id = ?, "
                "doc = ?, version = ?, last_modified = ? WHERE id = ?",
                (
                    doc["displayName"],
                    doc["displayName"].casefold(),
                    doc.get("externalId"),
                    json.dumps(doc),
                    stored.version,
                    stored.last_modified,
                    stored.id,
                ),
            )

    @staticmethod
    def _set_members(
        conn: sqlite3.Connection, group_id: str, old: list[str], new: list[str]
    ) -> None:
        removed = set(old) - set(new)
        conn.executemany(
            "DELETE FROM group_members WHERE group_id = ? AND user_id = ?",
            [(group_id, u) for u in removed],
        )
        old_set = set(old)
        conn.executemany(
            "INSERT INTO group_members(group_id, user_id) VALUES (?, ?)",
            [(group_id, u) for u in new if u not in old_set],
        )


def user_display_name(doc: dict[str, Any]) -> str:
    """What a person is called in lists: displayName, else the formatted or given+family name."""
    name = doc.get("name") or {}
    given_family = " ".join(p for p in (name.get("givenName"), name.get("familyName")) if p)
    return str(doc.get("displayName") or name.get("formatted") or given_family or doc["userName"])


def existing_user_ids(conn: sqlite3.Connection, org: Organisation, ids: Iterable[str]) -> set[str]:
    wanted = list(ids)
    found: set[str] = set()
    for start in range(0, len(wanted), 900):
        chunk = wanted[start : start + 900]
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(
            f"SELECT id FROM users WHERE org_id = ? AND id IN ({marks})",  # noqa: S608
            [org.id, *chunk],
        )
        found.update(r[0] for r in rows)
    return found


def delete_resource(conn: sqlite3.Connection, kind: ResourceKind, rid: str) -> None:
    """Delete a user or group with what hangs on it (see the module docstring)."""
    if kind is USERS:
        stamp = now()
        conn.execute(
            "UPDATE groups SET version = version + 1, last_modified = ? WHERE id IN "
            "(SELECT group_id FROM group_members WHERE user_id = ?)",
            (stamp, rid),
        )
        conn.execute("DELETE FROM group_members WHERE user_id = ?", (rid,))
        conn.execute("DELETE FROM user_emails WHERE user_id = ?", (rid,))
        conn.execute("DELETE FROM licences WHERE user_id = ?", (rid,))
        conn.execute("DELETE FROM users WHERE id = ?", (rid,))
    else:
        conn.execute("DELETE FROM group_members WHERE group_id = ?", (rid,))
        conn.execute("DELETE FROM licences WHERE group_id = ?", (rid,))
        conn.execute("DELETE FROM groups WHERE id = ?", (rid,))


def _index_emails(
    conn: sqlite3.Connection, org: Organisation, user_id: str, doc: dict[str, Any]
) -> None:
    values = {e["value"].casefold() for e in doc.get("emails", []) if e.get("value")}
    conn.executemany(
        "INSERT INTO user_emails(org_id, user_id, value_key) VALUES (?, ?, ?)",
        [(org.id, user_id, v) for v in values],
    )


def _refers_to_related(kind: ResourceKind, node: Node | None) -> bool:
    related = "members" if kind is GROUPS else "groups"
    return node is not None and related in repr(node).lower()


_LOOKUP_SQL: dict[str, Callable[[int, str], tuple[str, list[Any]]]] = {
    "id": lambda org, key: ("id = ?", [key]),
    "userName": lambda org, key: ("user_name_key = ?", [key]),
    "externalId": lambda org, key: ("external_id = ?", [key]),
    "displayName": lambda org, key: ("display_name_key = ?", [key]),
    "email": lambda org, key: (
        "id IN (SELECT user_id FROM user_emails WHERE org_id = ? AND value_key = ?)",
        [org, key],
    ),
    "member": lambda org, key: (
        "id IN (SELECT group_id FROM group_members WHERE user_id = ?)",
        [key],
    ),
}
