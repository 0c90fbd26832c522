"""Looking after a school: its home page (the connect button, or the dashboard with the first-
run guide), held removals with approve and reject, and the audit log with search and CSV.

Approving and rejecting go through ``common.sync.engine.approve_held``/``reject_held``, as
``skolsynk held`` does; the audit log is read from ``common.state.audit``.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import Blueprint, Response, redirect, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from admin.access import school_page
from admin.forms import search_text
from admin.identity import Person
from admin.pages import find_school, page
from admin.portal_views import token_set_at
from admin.state import state
from common.state.latency import LatencyStore
from common.state.registry import Tenant
from common.sync import engine

blueprint = Blueprint("care", __name__)

AUDIT_PER_PAGE = 100
#: the audit log keeps six months; a search looks at most that far back
AUDIT_DAYS = 183
USER_KINDS = (
    "create_user",
    "adopt_user",
    "update_user",
    "deactivate_user",
    "reactivate_user",
    "delete_user",
)


def guide_steps(tenant: Tenant | None) -> list[dict[str, Any]]:
    """The first-run guide: connect, portal, scope, preview, test, production; which are done."""
    last = state().services.runs.last(tenant.id) if tenant is not None else None
    steps = [
        ("connect", _("Anslut skolan"), tenant is not None),
        ("portal", _("Ange testportalen"), tenant is not None and "test" in tenant.portals),
        (
            "scope",
            _("Välj skolor och klasser"),
            tenant is not None
            and bool(
                tenant.scope.school_ids
                or tenant.scope.class_pattern
                or tenant.scope.include
                or tenant.scope.exclude
            ),
        ),
        ("preview", _("Förhandsgranska"), last is not None),
        ("test", _("Synka till testmiljön"), last is not None),
        (
            "production",
            _("Byt till produktion"),
            tenant is not None and tenant.environment == "production",
        ),
    ]
    result = []
    current_found = False
    for key, title, done in steps:
        current = not done and not current_found
        current_found = current_found or current
        result.append({"key": key, "title": title, "done": done, "current": current})
    return result


@blueprint.get("/skola/<tenant_id>/")
@school_page
def school(tenant_id: str, person: Person) -> tuple[str, int]:
    svc = state().services
    tenant = find_school(svc, tenant_id)
    if tenant is None:
        return page(
            "connect.html",
            tenant_id=tenant_id,
            person=person,
            own=person.tenant_id == tenant_id and person.global_admin,
            steps=guide_steps(None),
        )
    subscriptions = state().subscriptions.for_tenant(tenant.id)
    return page(
        "dashboard.html",
        tenant=tenant,
        person=person,
        steps=guide_steps(tenant),
        last=svc.runs.last(tenant.id),
        last_live=svc.runs.last(tenant.id, kind="live"),
        latency=LatencyStore(svc.redis).summary(tenant.id),
        held=svc.safety.held(tenant.id),
        subscriptions=subscriptions,
        set_at=token_set_at(tenant.id),
        current_run=state().progress.current(tenant.id),
        connected=request.args.get("connected") == "1",
    )


# --- held removals ---------------------------------------------------------------------------


@blueprint.get("/skola/<tenant_id>/vantande")
@school_page
def held(tenant_id: str, person: Person) -> BaseResponse | tuple[str, int]:
    tenant = find_school(state().services, tenant_id)
    if tenant is None:
        return redirect(url_for("care.school", tenant_id=tenant_id))
    return page(
        "held.html",
        tenant=tenant,
        person=person,
        held=state().services.safety.held(tenant.id),
        done=request.args.get("done", ""),
    )


@blueprint.post("/skola/<tenant_id>/vantande")
@school_page
def decide(tenant_id: str, person: Person) -> BaseResponse | tuple[str, int]:
    tenant = find_school(state().services, tenant_id)
    if tenant is None:
        return redirect(url_for("care.school", tenant_id=tenant_id))
    decision = request.form.get("decision", "")
    nothing = redirect(url_for("care.held", tenant_id=tenant.id, done="none"), code=303)
    if decision not in ("approve", "reject"):
        return nothing
    chosen: list[str] | None = None  # all of them
    if request.form.get("scope") != "all":
        held_now = {h.action.key for h in state().services.safety.held(tenant.id)}
        chosen = [k for k in request.form.getlist("id") if k in held_now]
        if not chosen:
            # nothing ticked, or decided meanwhile (a double submit, another administrator)
            return nothing
    try:
        if decision == "approve":
            taken, _report = engine.approve_held(state().services, tenant.id, chosen)
        else:
            taken = engine.reject_held(state().services, tenant.id, chosen)
    except KeyError:
        return nothing
    return redirect(
        url_for("care.held", tenant_id=tenant.id, done=f"{decision}:{len(taken)}"), code=303
    )


# --- audit log ---------------------------------------------------------------------------------


def _day(raw: str | None) -> date | None:
    try:
        return date.fromisoformat((raw or "").strip()[:10]) if raw else None
    except ValueError:
        return None


def _audit(tenant_id: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    query = search_text(request.args.get("q"))
    what = request.args.get("vad", "")
    since, until = _day(request.args.get("fran")), _day(request.args.get("till"))
    oldest = datetime.now(UTC) - timedelta(days=AUDIT_DAYS)
    start = max(datetime.combine(since, time.min, UTC), oldest) if since else oldest
    end = datetime.combine(until, time.max, UTC) if until else None
    needle = query.casefold()
    found = []
    for entry in state().services.audit.entries(tenant_id, since=start):
        if end is not None and entry.get("at", "") > end.isoformat():
            break
        is_user = entry.get("kind") in USER_KINDS
        if (what == "person" and not is_user) or (what == "klass" and is_user):
            continue
        # a person is found by e-mail (the label) or by the names the change wrote
        haystack = " ".join(
            (
                entry.get("label", ""),
                entry.get("object_id", ""),
                entry.get("portal_id", ""),
                *(str(v) for v in entry.get("changes", {}).values()),
            )
        ).casefold()
        if needle and needle not in haystack:
            continue
        found.append(entry)
    found.reverse()
    filters = {
        "q": query,
        "vad": what,
        "fran": since.isoformat() if since else "",
        "till": until.isoformat() if until else "",
        "bad_date": bool(request.args.get("fran") and not since)
        or bool(request.args.get("till") and not until),
    }
    return found, filters


@blueprint.get("/skola/<tenant_id>/logg")
@school_page
def audit(tenant_id: str, person: Person) -> BaseResponse | tuple[str, int]:
    tenant = find_school(state().services, tenant_id)
    if tenant is None:
        return redirect(url_for("care.school", tenant_id=tenant_id))
    entries, filters = _audit(tenant.id)
    pages = max(1, -(-len(entries) // AUDIT_PER_PAGE))
    try:
        number = min(max(1, int(request.args.get("sida", "1"))), pages)
    except ValueError:
        number = 1
    return page(
        "audit.html",
        tenant=tenant,
        person=person,
        entries=entries[(number - 1) * AUDIT_PER_PAGE : number * AUDIT_PER_PAGE],
        matching=len(entries),
        filters=filters,
        page_number=number,
        pages=pages,
    )


@blueprint.get("/skola/<tenant_id>/logg.csv")
@school_page
def audit_csv(tenant_id: str, person: Person) -> BaseResponse:
    tenant = find_school(state().services, tenant_id)
    if tenant is None:
        return redirect(url_for("care.school", tenant_id=tenant_id))
    entries, _filters = _audit(tenant.id)
    columns = (
        "at",
        "kind",
        "label",
        "object_id",
        "portal_id",
        "outcome",
        "why",
        "reason",
        "changes",
        "run_id",
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for entry in entries:
        row = [
            json.dumps(entry[c], ensure_ascii=False) if c == "changes" else str(entry.get(c, ""))
            for c in columns
        ]
        writer.writerow(["'" + v if v.startswith(("=", "+", "-", "@")) else v for v in row])
    return Response(
        buffer.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="skolsynk-logg-{tenant.id}.csv"'},
    )
