"""Person lookup ("Varför synkas inte …?") and "Synka nu" for people and classes.

Type a name or e-mail: the matching Microsoft 365 users are listed; for one of them the page
says whether they are in scope and why or why not (not from SDS, school not chosen, excluded,
guest, disabled, deleted), which portal account they are linked to and how (externalId, or
adopted by e-mail), and their last audit entries. "Synka nu" runs the chosen people and classes
at once through the engine (``admin.runner.sync_now``) and shows each result.

The verdict uses ``common.graph.source.read_user`` and ``common.graph.classify``: the same rules
the sync applies, asked with and without parts of the scope to tell which part leaves the person
out.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import quote

from flask import Blueprint, redirect, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from admin.access import school_page
from admin.forms import search_text
from admin.identity import Person
from admin.pages import find_school, page
from admin.runner import sync_now
from admin.state import state
from common.errors import NotFound
from common.graph import source
from common.graph.classify import school_in_scope
from common.model import MsUser, Scope
from common.state.dispatch import ObjectKind
from common.state.registry import Tenant

blueprint = Blueprint("lookup", __name__)

MAX_HITS = 20
AUDIT_SHOWN = 10
MAX_SYNC_NOW = 200
_GUID_LENGTH = 36


def _odata(value: str) -> str:
    return value.replace("'", "''")


def search_people(tenant: Tenant, query: str) -> list[dict[str, Any]]:
    graph = state().services.graph(tenant.id)
    text = _odata(query)
    found = graph.get(
        "/users",
        {
            "$filter": f"startswith(displayName,'{text}') or startswith(userPrincipalName,'{text}')"
            f" or startswith(mail,'{text}') or startswith(givenName,'{text}')"
            f" or startswith(surname,'{text}')",
            "$select": "id,displayName,userPrincipalName,mail,userType,accountEnabled",
            "$top": str(MAX_HITS),
        },
    )
    people: list[dict[str, Any]] = found.get("value", [])
    return people[:MAX_HITS]


def verdict(tenant: Tenant, user_id: str) -> dict[str, Any]:
    """Whether the user is in scope, why (not), their portal account and last audit entries."""
    svc = state().services
    graph = svc.graph(tenant.id)
    result: dict[str, Any] = {"id": user_id, "reasons": [], "in_scope": False}
    try:
        raw = graph.get(
            f"/users/{quote(user_id)}",
            {"$select": "id,displayName,userPrincipalName,mail,userType,accountEnabled"},
        )
    except NotFound:
        raw = None
    everything = source.read_user(graph, Scope(), user_id)
    scoped = source.read_user(graph, tenant.scope, user_id)
    reasons: list[str] = result["reasons"]
    if raw is None:
        result["name"] = user_id
        if user_id in everything.soft_deleted_user_ids:
            reasons.append(
                _(
                    "Personen är raderad i Microsoft 365 (i papperskorgen): kontot i portalen är "
                    "avaktiverat och kommer tillbaka med allt om personen återställs."
                )
            )
        else:
            reasons.append(
                _("Personen finns inte i Microsoft 365 (raderad för gott eller fel id).")
            )
    else:
        result["name"] = raw.get("displayName") or raw.get("userPrincipalName")
        result["upn"] = raw.get("userPrincipalName", "")
        ms: MsUser | None = everything.users.get(user_id)
        if str(raw.get("userType", "")).casefold() == "guest":
            reasons.append(_("Personen är gäst i er Microsoft 365; gäster synkas aldrig."))
        elif ms is None:
            reasons.append(
                _(
                    "Personen kommer inte från SDS som elev eller lärare (till exempel personal), "
                    "och synkas därför inte."
                )
            )
        elif user_id in scoped.users:
            result["in_scope"] = True
            reasons.append(_("Personen är elev eller lärare från SDS och ingår i omfattningen."))
        elif (
            user_id
            in source.read_user(graph, replace(tenant.scope, exclude=frozenset()), user_id).users
        ):
            reasons.append(_("Personen står i listan över undantag och synkas därför inte."))
        elif not school_in_scope(ms.school_ids, tenant.scope):
            reasons.append(_("Personens skola är inte vald under Omfattning."))
        if ms is not None and not ms.account_enabled:
            reasons.append(
                _("Kontot är inaktiverat i Microsoft 365: i portalen är det avaktiverat.")
            )
        if ms is not None:
            result["role"] = ms.role.value
            result["email"] = ms.email
    result["portal"] = _portal_link(tenant, user_id, result.get("email"))
    result["audit"] = [e for e in svc.audit.entries(tenant.id) if e.get("object_id") == user_id][
        -AUDIT_SHOWN:
    ][::-1]
    return result


def _portal_link(tenant: Tenant, user_id: str, email: str | None) -> dict[str, Any] | None:
    if tenant.environment not in tenant.portals:
        return None
    portal = state().services.portal(tenant)
    linked = portal.find_users(external_ids=[user_id])
    if linked:
        adopted = any(
            e.get("kind") == "adopt_user" and e.get("object_id") == user_id
            for e in state().services.audit.entries(tenant.id)
        )
        user = linked[0]
        return {
            "how": "adopted" if adopted else "external_id",
            "user_name": user.user_name,
            "portal_id": user.id,
            "active": user.active,
        }
    if email:
        same = [u for u in portal.find_users(emails=[email]) if not u.managed]
        if same:
            return {
                "how": "would_adopt",
                "user_name": same[0].user_name,
                "portal_id": same[0].id,
                "active": same[0].active,
            }
    return {"how": "none"}


@blueprint.get("/skola/<tenant_id>/person")
@school_page
def lookup(tenant_id: str, person: Person) -> BaseResponse | tuple[str, int]:
    tenant = find_school(state().services, tenant_id)
    if tenant is None:
        return redirect(url_for("care.school", tenant_id=tenant_id))
    query = search_text(request.args.get("q"))
    chosen = search_text(request.args.get("id"))
    hits = search_people(tenant, query) if query else []
    if not chosen and len(hits) == 1:
        chosen = str(hits[0].get("id", ""))
    found = verdict(tenant, chosen) if chosen and len(chosen) <= _GUID_LENGTH else None
    return page("lookup.html", tenant=tenant, person=person, query=query, hits=hits, found=found)


@blueprint.post("/skola/<tenant_id>/synka-nu")
@school_page
def sync_objects(tenant_id: str, person: Person) -> BaseResponse | tuple[str, int]:
    tenant = find_school(state().services, tenant_id)
    if tenant is None:
        return redirect(url_for("care.school", tenant_id=tenant_id))
    objects: list[tuple[ObjectKind, str]] = []
    kinds: tuple[ObjectKind, ...] = ("user", "group")
    for kind in kinds:
        for raw in request.form.getlist(kind):
            object_id = raw.strip()
            if object_id and len(object_id) <= _GUID_LENGTH:
                objects.append((kind, object_id))
    objects = list(dict.fromkeys(objects))[:MAX_SYNC_NOW]
    if not objects:
        return page(
            "synced.html",
            400,
            tenant=tenant,
            person=person,
            results=[],
            problem=_("Välj minst en person eller klass att synka."),
        )
    if tenant.environment not in tenant.portals:
        return page(
            "synced.html",
            409,
            tenant=tenant,
            person=person,
            results=[],
            problem=_("Ange skolans portal innan du synkar."),
        )
    results = sync_now(state().services, tenant.id, objects)
    return page("synced.html", tenant=tenant, person=person, results=results, problem="")
