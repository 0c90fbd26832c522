"""Rows of users and groups: the ``Stored`` resource, reading and writing its rows, the
membership and e-mail side tables, and the integrity checks that run inside a write.

See ``scim_store`` for the rules these keep.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sandbox.portal.db import Organisation, now
from sandbox.portal.errors import invalid_value, uniqueness
from sandbox.portal.resources import render
from sandbox.portal.schemas import GROUPS, USERS, ResourceKind

TABLE = {"User": "users", "Group": "groups"}
MEMBERS_OF_GROUPS = (
    "SELECT m.group_id AS owner, m.user_id AS rid, u.display_name AS display "
    "FROM group_members m JOIN users u ON u.id = m.user_id"
)
GROUPS_OF_USERS = (
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


def row_to_stored(kind: ResourceKind, row: sqlite3.Row) -> Stored:
    return Stored(
        kind,
        row["id"],
        json.loads(row["doc"]),
        row["version"],
        row["created"],
        row["last_modified"],
    )


def load_related(conn: sqlite3.Connection, page: list[Stored]) -> None:
    if not page:
        return
    by_id = {s.id: s for s in page}
    for stored in page:
        stored.related = []
    # only "?" placeholders are formatted into these statements
    marks = ",".join("?" * len(by_id))
    if page[0].kind is GROUPS:
        sql = f"{MEMBERS_OF_GROUPS} WHERE m.group_id IN ({marks}) ORDER BY m.rowid"
    else:
        sql = f"{GROUPS_OF_USERS} WHERE m.user_id IN ({marks}) ORDER BY g.seq"
    for row in conn.execute(sql, list(by_id)):
        related = by_id[row["owner"]].related
        assert related is not None
        related.append((row["rid"], row["display"]))


def member_ids(conn: sqlite3.Connection, group_id: str) -> list[str]:
    rows = conn.execute(
        "SELECT user_id FROM group_members WHERE group_id = ? ORDER BY rowid", (group_id,)
    )
    return [r[0] for r in rows]


def take_members(
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


def check_unique(conn: sqlite3.Connection, org: Organisation, stored: Stored) -> None:
    if stored.kind is not USERS:
        return
    row = conn.execute(
        "SELECT id FROM users WHERE org_id = ? AND user_name_key = ? AND id != ?",
        (org.id, stored.doc["userName"].casefold(), stored.id),
    ).fetchone()
    if row is not None:
        raise uniqueness(f"userName {stored.doc['userName']!r} is already taken")


def _doc_columns(stored: Stored) -> dict[str, Any]:
    """The columns that follow from the document: INSERT and UPDATE must write the same ones."""
    doc = stored.doc
    if stored.kind is USERS:
        derived = {
            "user_name_key": doc["userName"].casefold(),
            "external_id": doc.get("externalId"),
            "display_name": user_display_name(doc),
        }
    else:
        derived = {
            "display_name": doc["displayName"],
            "display_name_key": doc["displayName"].casefold(),
            "external_id": doc.get("externalId"),
        }
    return {
        **derived,
        "doc": json.dumps(doc),
        "version": stored.version,
        "last_modified": stored.last_modified,
    }


def insert_row(conn: sqlite3.Connection, org: Organisation, stored: Stored) -> None:
    columns: dict[str, Any] = {"org_id": org.id, "id": stored.id, "created": stored.created}
    columns.update(_doc_columns(stored))
    names = ", ".join(columns)
    marks = ", ".join("?" * len(columns))
    # only fixed column and table names are formatted into the statement
    conn.execute(
        f"INSERT INTO {TABLE[stored.kind.name]}({names}) VALUES ({marks})",  # noqa: S608
        list(columns.values()),
    )
    if stored.kind is USERS:
        index_emails(conn, org, stored.id, stored.doc)


def update_row(conn: sqlite3.Connection, org: Organisation, stored: Stored) -> None:
    columns = _doc_columns(stored)
    assignments = ", ".join(f"{name} = ?" for name in columns)
    conn.execute(
        f"UPDATE {TABLE[stored.kind.name]} SET {assignments} WHERE id = ?",  # noqa: S608
        [*columns.values(), stored.id],
    )
    if stored.kind is USERS:
        conn.execute("DELETE FROM user_emails WHERE user_id = ?", (stored.id,))
        index_emails(conn, org, stored.id, stored.doc)


def set_members(conn: sqlite3.Connection, group_id: str, old: list[str], new: list[str]) -> None:
    old_set = set(old)
    conn.executemany(
        "DELETE FROM group_members WHERE group_id = ? AND user_id = ?",
        [(group_id, u) for u in old_set - set(new)],
    )
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


def index_emails(
    conn: sqlite3.Connection, org: Organisation, user_id: str, doc: dict[str, Any]
) -> None:
    values = {e["value"].casefold() for e in doc.get("emails", []) if e.get("value")}
    conn.executemany(
        "INSERT INTO user_emails(org_id, user_id, value_key) VALUES (?, ?, ?)",
        [(org.id, user_id, v) for v in values],
    )


LOOKUP_SQL: dict[str, Callable[[int, str], tuple[str, list[Any]]]] = {
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
