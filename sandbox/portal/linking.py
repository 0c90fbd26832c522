"""Which portal account a Microsoft sign-in belongs to, and linking it (DESIGN §3, point 9).

A school's organisation in the portal belongs to one Microsoft tenant (``microsoft_tenants``:
set by the portal's administrator, or learned when a sign-in's ``oid`` is the ``externalId``
the sync wrote into an organisation no tenant has yet). A sign-in is the account whose
``externalId`` equals the token's ``oid``; else the one unmanaged account of the tenant's
organisation whose e-mail (any letter case) is the token's ``preferred_username`` or ``email``
and lies in one of the tenant's verified domains, which is then linked (its ``externalId``
becomes the ``oid``, so the sync and later sign-ins find it; its licences stay). Nothing is
ever matched across organisations or tenants.

Failure policy: ``resolve`` returns an ``Outcome`` naming what is wrong (no organisation, no
account, deactivated); it raises nothing for a person's data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sandbox.portal.db import Database, Organisation
from sandbox.portal.schemas import USERS
from sandbox.portal.scim_store import ScimStore

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS microsoft_tenants (
    tenant_id TEXT PRIMARY KEY,
    org_id INTEGER NOT NULL UNIQUE REFERENCES organisations(id)
);
"""
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
SIGNED_IN = "signed-in"
NO_ORGANISATION = "no-organisation"
NO_ACCOUNT = "no-account"
DEACTIVATED = "deactivated"


@dataclass(frozen=True)
class Outcome:
    kind: str
    org: Organisation | None = None
    user_id: str | None = None
    linked_now: bool = False


def ensure_schema(db: Database) -> None:
    with db.connection() as conn:
        conn.executescript(SCHEMA_SQL)


def set_tenant(db: Database, org: Organisation, tenant_id: str) -> None:
    """Make ``org`` the organisation of ``tenant_id`` (one each way)."""
    with db.write() as conn:
        conn.execute(
            "DELETE FROM microsoft_tenants WHERE tenant_id = ? OR org_id = ?", (tenant_id, org.id)
        )
        conn.execute(
            "INSERT INTO microsoft_tenants(tenant_id, org_id) VALUES (?, ?)", (tenant_id, org.id)
        )


def tenant_of(db: Database, org: Organisation) -> str | None:
    with db.connection() as conn:
        row = conn.execute(
            "SELECT tenant_id FROM microsoft_tenants WHERE org_id = ?", (org.id,)
        ).fetchone()
    return None if row is None else str(row["tenant_id"])


def _organisation_of(db: Database, tenant_id: str) -> Organisation | None:
    with db.connection() as conn:
        row = conn.execute(
            "SELECT o.* FROM organisations o JOIN microsoft_tenants m ON m.org_id = o.id "
            "WHERE m.tenant_id = ?",
            (tenant_id,),
        ).fetchone()
    return (
        None if row is None else Organisation(row["id"], row["name"], row["token"], row["created"])
    )


def _by_external_id(db: Database, oid: str) -> list[tuple[int, str]]:
    with db.connection() as conn:
        rows = conn.execute("SELECT org_id, id FROM users WHERE external_id = ?", (oid,)).fetchall()
    return [(int(r["org_id"]), str(r["id"])) for r in rows]


def _by_email(db: Database, org: Organisation, addresses: set[str]) -> list[str]:
    if not addresses:
        return []
    marks = ",".join("?" * len(addresses))
    with db.connection() as conn:
        rows = conn.execute(
            "SELECT DISTINCT e.user_id FROM user_emails e JOIN users u ON u.id = e.user_id "  # noqa: S608 (only placeholders are formatted in)
            f"WHERE e.org_id = ? AND e.value_key IN ({marks}) AND u.external_id IS NULL",
            (org.id, *sorted(addresses)),
        ).fetchall()
    return [str(r["user_id"]) for r in rows]


def _active(scim: ScimStore, org: Organisation, user_id: str) -> bool:
    return bool(scim.get(org, USERS, user_id).doc.get("active", True))


def resolve(
    db: Database, scim: ScimStore, claims: dict[str, Any], verified_domains: tuple[str, ...]
) -> Outcome:
    """The account of a validated sign-in, linking it by e-mail when that is allowed."""
    tenant_id, oid = str(claims["tid"]), str(claims["oid"])
    org = _organisation_of(db, tenant_id)
    linked = _by_external_id(db, oid)
    if org is None and len(linked) == 1:
        candidate = next((o for o in db.organisations() if o.id == linked[0][0]), None)
        if candidate is not None and tenant_of(db, candidate) is None:
            set_tenant(db, candidate, tenant_id)  # the sync wrote this tenant's object id here
            org = candidate
    if org is None:
        return Outcome(NO_ORGANISATION)
    mine = [user_id for org_id, user_id in linked if org_id == org.id]
    if mine:
        kind = SIGNED_IN if _active(scim, org, mine[0]) else DEACTIVATED
        return Outcome(kind, org, mine[0])
    domains = {d.casefold() for d in verified_domains}
    addresses = {
        str(claims[name]).casefold()
        for name in ("preferred_username", "email")
        if claims.get(name) and str(claims[name]).rpartition("@")[2].casefold() in domains
    }
    found = _by_email(db, org, addresses)
    if len(found) != 1:
        return Outcome(NO_ACCOUNT, org)
    user_id = found[0]
    if not _active(scim, org, user_id):
        return Outcome(DEACTIVATED, org, user_id)
    scim.update(org, USERS, user_id, lambda doc: {**doc, "externalId": oid}, if_match=None)
    return Outcome(SIGNED_IN, org, user_id, linked_now=True)
