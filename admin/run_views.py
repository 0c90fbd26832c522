"""Syncing to the test portal with a live progress bar, and going live.

"Synka till testmiljön" starts a full reconcile (``admin.runner``) and shows its progress page;
the bar reads ``…/korning/<id>.json``, which any admin process answers from Redis. "Byt till
produktion" shows the preview against the production portal and asks for the school's name;
then the school's subscriptions are ensured, its environment set to production through the
registry, and the first production sync runs.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from flask import Blueprint, jsonify, redirect, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from admin import preview_views
from admin.access import school_page
from admin.forms import FormProblems, typed_name_matches
from admin.identity import Person
from admin.pages import find_school, page, refuse
from admin.runner import start_reconcile
from admin.state import state
from common.state.subscription_lifecycle import ensure_subscriptions

blueprint = Blueprint("runs", __name__)


def _busy() -> str:
    return str(_("En synkning av skolan pågår redan. Vänta tills den är klar och försök igen."))


@blueprint.post("/skola/<tenant_id>/synka")
@school_page
def sync(tenant_id: str, person: Person) -> BaseResponse | tuple[str, int]:
    tenant = find_school(state().services, tenant_id)
    if tenant is None or tenant.environment not in tenant.portals:
        return refuse(409, _("Ange skolans portal innan du synkar."))
    running = _running(tenant.id)
    if running is not None:
        # a double submit, or another administrator was quicker: watch that run
        return redirect(url_for("runs.run", tenant_id=tenant.id, progress_id=running), code=303)
    redis = state().services.redis
    progress_id = start_reconcile(
        state().services,
        state().progress,
        tenant.id,
        tenant.environment,
        why="admin",
        after=lambda: preview_views.forget(redis, tenant.id),
        busy_sentence=_busy(),
    )
    return redirect(url_for("runs.run", tenant_id=tenant.id, progress_id=progress_id), code=303)


def _running(tenant_id: str) -> str | None:
    """The id of the school's watched run that is still going, if there is one."""
    current = state().progress.current(tenant_id)
    found = state().progress.get(current) if current else None
    return current if found is not None and found["state"] == "running" else None


def _progress(tenant_id: str, progress_id: str) -> dict[str, Any] | None:
    found = state().progress.get(progress_id[:64])
    # a run of another school is as unknown as no run
    return found if found is not None and found["tenant_id"] == tenant_id else None


@blueprint.get("/skola/<tenant_id>/korning/<progress_id>")
@school_page
def run(tenant_id: str, progress_id: str, person: Person) -> BaseResponse | tuple[str, int]:
    tenant = find_school(state().services, tenant_id)
    found = _progress(tenant_id, progress_id)
    if tenant is None or found is None:
        return refuse(404, _("Den körningen finns inte (eller är glömd efter ett dygn)."))
    return page("run.html", tenant=tenant, person=person, run=found, progress_id=progress_id)


@blueprint.get("/skola/<tenant_id>/korning/<progress_id>.json")
@school_page
def run_json(tenant_id: str, progress_id: str, person: Person) -> Any:
    found = _progress(tenant_id, progress_id)
    if found is None:
        return jsonify(error="unknown run"), 404
    report = found["report"] or {}
    return jsonify(
        state=found["state"],
        percent=found["percent"],
        done=found["done"],
        total=found["total"],
        status=found["status"],
        phase=found["phase"],
        message=found["message"],
        outcome=report.get("outcome", ""),
        written=sum((report.get("applied") or {}).values()),
        held=report.get("held", 0),
    )


@blueprint.get("/skola/<tenant_id>/produktion")
@school_page
def go_live_form(tenant_id: str, person: Person) -> BaseResponse | tuple[str, int]:
    tenant = find_school(state().services, tenant_id)
    if tenant is None:
        return redirect(url_for("care.school", tenant_id=tenant_id))
    if "production" not in tenant.portals:
        return refuse(
            409,
            _("Ange produktionsportalens adress och token under Portaler först."),
            title=_("Byt till produktion"),
        )
    return preview_views.render_preview(
        tenant.id, person, "production", template="golive.html", problems=FormProblems()
    )


@blueprint.post("/skola/<tenant_id>/produktion")
@school_page
def go_live(tenant_id: str, person: Person) -> BaseResponse | tuple[str, int]:
    tenant = find_school(state().services, tenant_id)
    if tenant is None or "production" not in tenant.portals:
        return redirect(url_for("runs.go_live_form", tenant_id=tenant_id), code=303)
    problems = FormProblems()
    typed_name_matches(request.form.get("confirm_name", ""), tenant.name, problems)
    config = state().config
    if not problems and not config.public_url:
        problems.add(
            "confirm_name",
            _(
                "Skolsynk saknar sin publika adress för ändringar i realtid; kontakta "
                "portalens drift."
            ),
        )
    if problems:
        return preview_views.render_preview(
            tenant.id, person, "production", template="golive.html", problems=problems
        )
    svc = state().services
    ensure_subscriptions(
        svc.graph(tenant.id), state().subscriptions, tenant.id, config.require_public_url()
    )
    if tenant.environment != "production" or not tenant.enabled:
        svc.registry.save(replace(tenant, environment="production", enabled=True))
    redis = svc.redis
    preview_views.forget(redis, tenant.id)
    progress_id = start_reconcile(
        svc,
        state().progress,
        tenant.id,
        "production",
        why="admin",
        after=lambda: preview_views.forget(redis, tenant.id),
        busy_sentence=_busy(),
    )
    return redirect(url_for("runs.run", tenant_id=tenant.id, progress_id=progress_id), code=303)
