"""The preview: what a sync would do (counts, the classes that will sync, searchable and paged,
collisions with what to do about each, adoptions) and "Ladda ner CSV" of the whole plan.

The plan comes from ``common.sync.engine.preview``, as ``skolsynk preview`` gets it. Reading a
whole tenant takes a while, so the summary is kept in Redis for ``PREVIEW_TTL_SECONDS`` (every
admin process pages through the same one) until the person asks for a fresh one or changes the
settings.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, redirect, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from admin.access import school_page
from admin.forms import search_text
from admin.identity import Person
from admin.pages import find_school, page
from admin.state import state
from common.model import ActionKind
from common.state.store import KEY_PREFIX, redis_errors
from common.sync import engine
from common.sync.plan_csv import plan_csv

blueprint = Blueprint("preview", __name__)

PREVIEW_TTL_SECONDS = 30 * 60
CLASSES_PER_PAGE = 50
#: the kinds shown as counts, in the order people read them
COUNTED = (
    ActionKind.CREATE_USER,
    ActionKind.ADOPT_USER,
    ActionKind.UPDATE_USER,
    ActionKind.REACTIVATE_USER,
    ActionKind.DEACTIVATE_USER,
    ActionKind.DELETE_USER,
    ActionKind.CREATE_GROUP,
    ActionKind.UPDATE_GROUP,
    ActionKind.DELETE_GROUP,
)


def _key(tenant_id: str, environment: str) -> str:
    return f"{KEY_PREFIX}admin-preview:{tenant_id}:{environment}"


def forget(client: Any, tenant_id: str) -> None:
    """Drop the kept previews of a tenant (its settings or its portal changed); takes the Redis
    client, since a run's thread calls it outside any request."""
    with redis_errors():
        client.delete(_key(tenant_id, "test"), _key(tenant_id, "production"))


def summary(tenant_id: str, environment: str, *, fresh: bool = False) -> dict[str, Any]:
    """The preview's summary for one environment, read now or kept from a moment ago."""
    redis = state().services.redis
    key = _key(tenant_id, environment)
    if not fresh:
        with redis_errors():
            raw = redis.get(key)
        if raw is not None:
            kept: dict[str, Any] = json.loads(raw)
            return kept
    view = engine.preview(state().services, tenant_id, environment=environment)
    plan = view.plan
    counts = plan.counts()
    data = {
        "environment": environment,
        "users_in_scope": len(view.microsoft.users),
        "classes_in_scope": len(view.microsoft.classes),
        "portal_users": len(view.portal.users),
        "portal_groups": len(view.portal.groups),
        "counts": {kind.value: counts[kind.value] for kind in COUNTED},
        "gate": view.gate or "",
        "would_hold": view.would_hold,
        "removals": len(plan.removals),
        "classes": [[cid, name] for cid, name in plan.classes_in_scope],
        "collisions": [
            {
                "name": c.display_name,
                "microsoft_email": c.microsoft_email,
                "portal_email": c.portal_email or "",
                "portal_id": c.portal_id,
            }
            for c in plan.collisions
        ],
        "adoptions": [
            {"label": a.label, "portal_id": a.portal_id or "", "reason": a.reason}
            for a in plan.of_kind(ActionKind.ADOPT_USER)
        ],
        "csv": plan_csv(plan),
    }
    with redis_errors():
        redis.set(key, json.dumps(data), ex=PREVIEW_TTL_SECONDS)
    return data


def render_preview(
    tenant_id: str, person: Person, environment: str, *, template: str, **extra: Any
) -> BaseResponse | tuple[str, int]:
    tenant = find_school(state().services, tenant_id)
    if tenant is None or environment not in tenant.portals:
        return redirect(url_for("care.school", tenant_id=tenant_id))
    data = summary(tenant.id, environment, fresh=request.args.get("fresh") == "1")
    query = search_text(request.args.get("q"))
    classes = [c for c in data["classes"] if query.casefold() in c[1].casefold()]
    pages = max(1, -(-len(classes) // CLASSES_PER_PAGE))
    try:
        number = min(max(1, int(request.args.get("sida", "1"))), pages)
    except ValueError:
        number = 1
    shown = classes[(number - 1) * CLASSES_PER_PAGE : number * CLASSES_PER_PAGE]
    return page(
        template,
        tenant=tenant,
        person=person,
        data=data,
        query=query,
        classes=shown,
        matching=len(classes),
        page_number=number,
        pages=pages,
        environment=environment,
        **extra,
    )


@blueprint.get("/skola/<tenant_id>/forhandsgranskning")
@school_page
def preview(tenant_id: str, person: Person) -> BaseResponse | tuple[str, int]:
    tenant = find_school(state().services, tenant_id)
    environment = tenant.environment if tenant is not None else "test"
    return render_preview(tenant_id, person, environment, template="preview.html")


@blueprint.get("/skola/<tenant_id>/forhandsgranskning/<environment>.csv")
@school_page
def download(tenant_id: str, environment: str, person: Person) -> BaseResponse:
    tenant = find_school(state().services, tenant_id)
    if tenant is None or environment not in tenant.portals:
        return redirect(url_for("care.school", tenant_id=tenant_id))
    data = summary(tenant.id, environment)
    name = f"skolsynk-plan-{environment}-{tenant.id}.csv"
    return Response(
        data["csv"],
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
