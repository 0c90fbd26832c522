""" "Mina läromedel": what a signed-in person holds, and what a teacher may hand out.

A person's licences are those given to them and to each group they are a member of (classes
from Microsoft and the portal's manual groups). A teacher's classes are the Microsoft classes
(managed groups) they are a member of; a teacher may give a licence to one of those classes or
to a student in one of them, and to nothing else.

Failure policy: ``give`` raises ``ApiError`` (403/400) for a target outside the teacher's
classes or an unknown product; reads never raise for missing rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from common.portal.scim import SCHOOL_USER_SCHEMA
from sandbox.portal.db import Database, Organisation
from sandbox.portal.errors import ApiError
from sandbox.portal.portal_store import PortalStore, user_summary

#: the learning material a teacher can hand out in the reference portal
PRODUCTS = (
    "Matematik Origo 7",
    "Svenska Direkt 8",
    "Engelska Spotlight 9",
    "NO-boken Fysik",
    "Historia Impuls",
)


@dataclass
class Holding:
    product: str
    via: str  # "dig" (the person) or the group's name
    assigned_at: str


@dataclass
class ClassView:
    id: str
    name: str
    students: list[dict[str, Any]] = field(default_factory=list)
    licences: list[str] = field(default_factory=list)


def person(db: Database, org: Organisation, user_id: str) -> dict[str, Any] | None:
    with db.connection() as conn:
        row = conn.execute(
            "SELECT id, doc FROM users WHERE org_id = ? AND id = ?", (org.id, user_id)
        ).fetchone()
    return None if row is None else user_summary(json.loads(row["doc"]), row["id"])


def _groups_of(db: Database, user_id: str) -> list[tuple[str, str, bool]]:
    with db.connection() as conn:
        rows = conn.execute(
            "SELECT g.id, g.display_name, g.external_id FROM group_members m "
            "JOIN groups g ON g.id = m.group_id WHERE m.user_id = ? ORDER BY g.display_name_key",
            (user_id,),
        ).fetchall()
    return [(r["id"], r["display_name"], r["external_id"] is not None) for r in rows]


def holdings(db: Database, user_id: str) -> list[Holding]:
    """Licences of the person, direct first, then through each group."""
    groups = {gid: name for gid, name, _ in _groups_of(db, user_id)}
    with db.connection() as conn:
        direct = conn.execute(
            "SELECT product, assigned_at FROM licences WHERE user_id = ? ORDER BY seq", (user_id,)
        ).fetchall()
        marks = ",".join("?" * len(groups))
        via_groups = (
            conn.execute(
                "SELECT product, group_id, assigned_at FROM licences "  # noqa: S608 (placeholders only)
                f"WHERE group_id IN ({marks}) ORDER BY seq",
                list(groups),
            ).fetchall()
            if groups
            else []
        )
    out = [Holding(r["product"], "dig", r["assigned_at"]) for r in direct]
    out += [Holding(r["product"], groups[r["group_id"]], r["assigned_at"]) for r in via_groups]
    return out


def role_of(db: Database, user_id: str) -> str | None:
    """``student``, ``teacher`` (school extension, else core ``userType``) or ``None``."""
    with db.connection() as conn:
        row = conn.execute("SELECT doc FROM users WHERE id = ?", (user_id,)).fetchone()
    if row is None:
        return None
    doc = json.loads(row["doc"])
    role = (doc.get(SCHOOL_USER_SCHEMA) or {}).get("role") or doc.get("userType")
    return str(role).lower() if role else None


def classes_of(db: Database, org: Organisation, teacher_id: str) -> list[ClassView]:
    """The Microsoft classes a teacher is in, each with its students and licences."""
    views = []
    for gid, name, managed in _groups_of(db, teacher_id):
        if not managed:
            continue
        with db.connection() as conn:
            members = conn.execute(
                "SELECT u.id, u.doc FROM group_members m JOIN users u ON u.id = m.user_id "
                "WHERE m.group_id = ? AND u.org_id = ? ORDER BY u.display_name",
                (gid, org.id),
            ).fetchall()
            licences = conn.execute(
                "SELECT product FROM licences WHERE group_id = ? ORDER BY seq", (gid,)
            ).fetchall()
        students = [
            user_summary(json.loads(m["doc"]), m["id"])
            for m in members
            if role_of(db, m["id"]) == "student"
        ]
        views.append(ClassView(gid, name, students, [r["product"] for r in licences]))
    return views


def give(
    db: Database,
    store: PortalStore,
    org: Organisation,
    teacher: dict[str, Any],
    *,
    product: str,
    target: str,
) -> dict[str, Any]:
    """A teacher gives ``product`` to ``class:ID`` or ``student:ID`` of their own classes."""
    if product not in PRODUCTS:
        raise ApiError(400, "välj ett läromedel ur listan / choose a product from the list")
    kind, _, target_id = target.partition(":")
    classes = classes_of(db, org, teacher["id"])
    if kind == "class" and any(c.id == target_id for c in classes):
        body = {"product": product, "groupId": target_id}
    elif kind == "student" and any(s["id"] == target_id for c in classes for s in c.students):
        body = {"product": product, "userId": target_id}
    else:
        raise ApiError(403, "du kan bara ge licenser i dina klasser / only in your own classes")
    return store.assign_licence(org, {**body, "assignedBy": teacher["userName"]})
