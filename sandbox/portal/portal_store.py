"""The portal's own side, outside SCIM: portal-only users, manual groups and licences.

An object with an ``externalId`` is managed by the sync: this side can read it and give it
licences, but neither change nor delete it (409, saying so). Licences are never touched by SCIM
writes except that they go with their holder on a hard delete: deleting a user deletes the
licences given to that user, deleting a group deletes the licences given to that group.
Deactivating a user (``active: false``) keeps every licence.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from common.portal.scim import (
    ENTERPRISE_USER_SCHEMA,
    GROUP_SCHEMA,
    SCHOOL_GROUP_SCHEMA,
    SCHOOL_USER_SCHEMA,
    USER_SCHEMA,
)
from sandbox.portal.db import Database, Organisation, now
from sandbox.portal.errors import ApiError, ScimError
from sandbox.portal.resources import normalise_resource
from sandbox.portal.schemas import GROUPS, USERS, ResourceKind
from sandbox.portal.scim_rows import user_display_name
from sandbox.portal.scim_store import ScimStore

MANAGED = "is managed by the sync (it has an externalId): change it in Microsoft 365, not here"


def user_summary(row_doc: dict[str, Any], rid: str) -> dict[str, Any]:
    """A user as the portal API and the HTML pages show it."""
    name = row_doc.get("name") or {}
    school = row_doc.get(SCHOOL_USER_SCHEMA) or {}
    emails = row_doc.get("emails") or []
    primary = next((e for e in emails if e.get("primary")), emails[0] if emails else {})
    return {
        "id": rid,
        "userName": row_doc["userName"],
        "displayName": user_display_name(row_doc),
        "givenName": name.get("givenName"),
        "familyName": name.get("familyName"),
        "email": primary.get("value"),
        "role": school.get("role"),
        "schools": school.get("schools", []),
        "schoolNames": school.get("schoolNames", []),
        "organization": (row_doc.get(ENTERPRISE_USER_SCHEMA) or {}).get("organization"),
        "grade": school.get("grade"),
        "active": row_doc.get("active", True),
        "externalId": row_doc.get("externalId"),
        "managed": bool(row_doc.get("externalId")),
    }


class PortalStore:
    """Users, groups and licences as the portal's own API sees them."""

    def __init__(self, db: Database, scim: ScimStore) -> None:
        self.db = db
        self.scim = scim

    # --- users ------------------------------------------------------------------------------

    def users(self, org: Organisation, *, offset: int = 0, limit: int = -1) -> list[dict[str, Any]]:
        with self.db.connection() as conn:
            rows = conn.execute(
                "SELECT id, doc FROM users WHERE org_id = ? ORDER BY seq LIMIT ? OFFSET ?",
                (org.id, limit, offset),
            ).fetchall()
        return [user_summary(json.loads(r["doc"]), r["id"]) for r in rows]

    def count(self, org: Organisation, table: str) -> int:
        assert table in ("users", "groups", "licences")
        with self.db.connection() as conn:
            sql = f"SELECT COUNT(*) FROM {table} WHERE org_id = ?"  # noqa: S608
            return int(conn.execute(sql, (org.id,)).fetchone()[0])

    def create_user(self, org: Organisation, body: Any) -> dict[str, Any]:
        fields = _fields(body, required=("userName", "email"))
        doc = self._user_doc({"schemas": [USER_SCHEMA, SCHOOL_USER_SCHEMA]}, fields)
        stored = self._scim_call(lambda: self.scim.create(org, USERS, _checked(USERS, doc)))
        return user_summary(stored.doc, stored.id)

    def update_user(self, org: Organisation, rid: str, body: Any) -> dict[str, Any]:
        fields = _fields(body, required=())
        self._refuse_managed(org, USERS, rid)

        def change(doc: dict[str, Any]) -> dict[str, Any]:
            return _checked(USERS, self._user_doc({"schemas": [USER_SCHEMA], **doc}, fields))

        stored = self._scim_call(lambda: self.scim.update(org, USERS, rid, change, if_match=None))
        return user_summary(stored.doc, stored.id)

    def delete_user(self, org: Organisation, rid: str) -> None:
        self._refuse_managed(org, USERS, rid)
        self._scim_call(lambda: self.scim.delete(org, USERS, rid, if_match=None))

    @staticmethod
    def _user_doc(doc: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
        name = dict(doc.get("name") or {})
        school = dict(doc.get(SCHOOL_USER_SCHEMA) or {})
        for key in ("givenName", "familyName"):
            if key in fields:
                name[key] = fields[key]
        for key in ("role", "schools", "grade"):
            if key in fields:
                school[key] = fields[key]
        for key in ("userName", "displayName", "active"):
            if key in fields:
                doc[key] = fields[key]
        if "email" in fields:
            doc["emails"] = [{"value": fields["email"], "type": "work", "primary": True}]
        doc["name"] = name or None
        doc[SCHOOL_USER_SCHEMA] = school or None
        doc.setdefault("active", True)
        return doc

    # --- groups -----------------------------------------------------------------------------

    def groups(
        self, org: Organisation, *, offset: int = 0, limit: int = -1
    ) -> list[dict[str, Any]]:
        with self.db.connection() as conn:
            rows = conn.execute(
                "SELECT id, doc FROM groups WHERE org_id = ? ORDER BY seq LIMIT ? OFFSET ?",
                (org.id, limit, offset),
            ).fetchall()
            members: dict[str, list[str]] = {r["id"]: [] for r in rows}
            if members:
                marks = ",".join("?" * len(members))
                for m in conn.execute(
                    f"SELECT group_id, user_id FROM group_members WHERE group_id IN ({marks}) "  # noqa: S608
                    "ORDER BY rowid",
                    list(members),
                ):
                    members[m["group_id"]].append(m["user_id"])
        out = []
        for row in rows:
            doc = json.loads(row["doc"])
            out.append(
                {
                    "id": row["id"],
                    "displayName": doc["displayName"],
                    "externalId": doc.get("externalId"),
                    "managed": bool(doc.get("externalId")),
                    "source": "microsoft" if doc.get("externalId") else "manual",
                    "school": (doc.get(SCHOOL_GROUP_SCHEMA) or {}).get("school"),
                    "schoolName": (doc.get(SCHOOL_GROUP_SCHEMA) or {}).get("schoolName"),
                    "members": members[row["id"]],
                    "memberCount": len(members[row["id"]]),
                }
            )
        return out

    def create_group(self, org: Organisation, body: Any) -> dict[str, Any]:
        fields = _fields(body, required=("displayName",))
        doc = _group_doc({"schemas": [GROUP_SCHEMA]}, fields)
        stored = self._scim_call(lambda: self.scim.create(org, GROUPS, _checked(GROUPS, doc)))
        return self._group(org, stored.id)

    def update_group(self, org: Organisation, rid: str, body: Any) -> dict[str, Any]:
        fields = _fields(body, required=())
        self._refuse_managed(org, GROUPS, rid)

        def change(doc: dict[str, Any]) -> dict[str, Any]:
            return _checked(GROUPS, _group_doc({"schemas": [GROUP_SCHEMA], **doc}, fields))

        self._scim_call(lambda: self.scim.update(org, GROUPS, rid, change, if_match=None))
        return self._group(org, rid)

    def delete_group(self, org: Organisation, rid: str) -> None:
        self._refuse_managed(org, GROUPS, rid)
        self._scim_call(lambda: self.scim.delete(org, GROUPS, rid, if_match=None))

    def _group(self, org: Organisation, rid: str) -> dict[str, Any]:
        return next(g for g in self.groups(org) if g["id"] == rid)

    # --- licences ---------------------------------------------------------------------------

    def licences(self, org: Organisation, *, with_holder: bool = False) -> list[dict[str, Any]]:
        """Licences in assignment order; ``with_holder`` adds the holder's current name (for
        people; it changes when the holder is renamed, the licence does not)."""
        with self.db.connection() as conn:
            rows = conn.execute(
                "SELECT l.*, u.display_name AS user_name, g.display_name AS group_name "
                "FROM licences l LEFT JOIN users u ON u.id = l.user_id "
                "LEFT JOIN groups g ON g.id = l.group_id WHERE l.org_id = ? ORDER BY l.seq",
                (org.id,),
            ).fetchall()
        licences = []
        for r in rows:
            licence = {
                "id": r["id"],
                "product": r["product"],
                "userId": r["user_id"],
                "groupId": r["group_id"],
                "assignedBy": r["assigned_by"],
                "assignedAt": r["assigned_at"],
            }
            if with_holder:
                licence["holder"] = r["user_name"] or r["group_name"]
            licences.append(licence)
        return licences

    def assign_licence(self, org: Organisation, body: Any) -> dict[str, Any]:
        fields = _fields(body, required=("product", "assignedBy"))
        user_id, group_id = fields.get("userId"), fields.get("groupId")
        if (user_id is None) == (group_id is None):
            raise ApiError(400, "give the licence to exactly one of userId or groupId")
        table = "users" if user_id else "groups"
        with self.db.write() as conn:
            found = conn.execute(
                f"SELECT 1 FROM {table} WHERE org_id = ? AND id = ?",  # noqa: S608
                (org.id, user_id or group_id),
            ).fetchone()
            if found is None:
                raise ApiError(404, f"no {table[:-1]} {user_id or group_id!r} in this organisation")
            licence_id = str(uuid.uuid4())
            conn.execute(
                "INSERT INTO licences(org_id, id, product, user_id, group_id, assigned_by, "
                "assigned_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    org.id,
                    licence_id,
                    fields["product"],
                    user_id,
                    group_id,
                    fields["assignedBy"],
                    now(),
                ),
            )
        return next(lic for lic in self.licences(org) if lic["id"] == licence_id)

    def remove_licence(self, org: Organisation, licence_id: str) -> None:
        with self.db.write() as conn:
            cursor = conn.execute(
                "DELETE FROM licences WHERE org_id = ? AND id = ?", (org.id, licence_id)
            )
            if cursor.rowcount == 0:
                raise ApiError(404, f"no licence {licence_id!r} in this organisation")

    # --- helpers ----------------------------------------------------------------------------

    def _refuse_managed(self, org: Organisation, kind: ResourceKind, rid: str) -> None:
        stored = self._scim_call(lambda: self.scim.get(org, kind, rid))
        if stored.doc.get("externalId"):
            what = "user" if kind is USERS else "group"
            raise ApiError(409, f"{what} {rid} {MANAGED}")

    @staticmethod
    def _scim_call(call: Any) -> Any:
        try:
            return call()
        except ScimError as exc:
            raise ApiError(exc.status, exc.detail) from exc


_TYPES: dict[str, type | tuple[type, ...]] = {
    "userName": str,
    "email": str,
    "givenName": str,
    "familyName": str,
    "displayName": str,
    "role": str,
    "grade": str,
    "schools": list,
    "active": bool,
    "members": list,
    "product": str,
    "userId": str,
    "groupId": str,
    "assignedBy": str,
}


def _fields(body: Any, *, required: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "send a JSON object")
    for key, value in body.items():
        if key not in _TYPES:
            raise ApiError(400, f"unknown field {key!r}")
        if value is not None and not isinstance(value, _TYPES[key]):
            raise ApiError(400, f"{key} has the wrong type")
    missing = [k for k in required if not body.get(k)]
    if missing:
        raise ApiError(400, f"missing {', '.join(missing)}")
    return {k: v for k, v in body.items() if v is not None or k in ("grade", "role")}


def _group_doc(doc: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    if "displayName" in fields:
        doc["displayName"] = fields["displayName"]
    if "members" in fields:
        doc["members"] = [{"value": m} for m in fields["members"]]
    return doc


def _checked(kind: ResourceKind, doc: dict[str, Any]) -> dict[str, Any]:
    """Run a document built here through the same checks as a SCIM body."""
    body = {k: v for k, v in doc.items() if v is not None}
    body["schemas"] = [kind.core.id] + [e.id for e in kind.extensions if e.id in body]
    try:
        return normalise_resource(kind, body)
    except ScimError as exc:
        raise ApiError(400, exc.detail) from exc
