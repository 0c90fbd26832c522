"""Portal connections: the test and production SCIM URL and token, and "Testa anslutningen".

Tokens are write-only: a page shows only ``***`` and when the token was set. A URL and token
are saved only when the portal answers them as a SCIM server; the tenant's settings are then
changed through the registry, as ``skolsynk tenant set`` does. A school connected from this app
waits, disabled, for its first portal; setting it enables the school.
"""

from __future__ import annotations

from dataclasses import replace

from flask import Blueprint, redirect, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from admin.access import school_page
from admin.forms import FormProblems, portal_token, portal_url
from admin.identity import Person
from admin.pages import find_school, page, refuse
from admin.portal_probe import Probe, probe
from admin.state import state
from common.config import Secret
from common.state.registry import ENVIRONMENTS, PortalEnvironment, Tenant
from common.state.runs import now_iso
from common.state.store import KEY_PREFIX, redis_errors

blueprint = Blueprint("portal", __name__)


def _set_at_key(tenant_id: str) -> str:
    return f"{KEY_PREFIX}admin-token-set:{tenant_id}"


def token_set_at(tenant_id: str) -> dict[str, str]:
    """When each environment's token was last set from this app."""
    with redis_errors():
        raw = state().services.redis.hgetall(_set_at_key(tenant_id))
    return {_text(k): _text(v) for k, v in raw.items()}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def forget_token_times(tenant_id: str) -> None:
    with redis_errors():
        state().services.redis.delete(_set_at_key(tenant_id))


def _render(
    tenant: Tenant,
    person: Person,
    *,
    status: int = 200,
    problems: FormProblems | None = None,
    environment: str = "",
    typed_url: str = "",
    checked: Probe | None = None,
    saved: str = "",
) -> tuple[str, int]:
    return page(
        "portals.html",
        status,
        tenant=tenant,
        person=person,
        environments=ENVIRONMENTS,
        set_at=token_set_at(tenant.id),
        problems=problems or FormProblems(),
        environment=environment,
        typed_url=typed_url,
        checked=checked,
        saved=saved,
    )


def _school(tenant_id: str) -> Tenant | None:
    return find_school(state().services, tenant_id)


@blueprint.get("/skola/<tenant_id>/portaler")
@school_page
def portals(tenant_id: str, person: Person) -> BaseResponse | tuple[str, int]:
    tenant = _school(tenant_id)
    if tenant is None:
        return redirect(url_for("care.school", tenant_id=tenant_id))
    return _render(tenant, person, saved=request.args.get("saved", ""))


@blueprint.post("/skola/<tenant_id>/portaler/<environment>")
@school_page
def save(tenant_id: str, environment: str, person: Person) -> BaseResponse | tuple[str, int]:
    tenant = _school(tenant_id)
    if tenant is None:
        return redirect(url_for("care.school", tenant_id=tenant_id))
    if environment not in ENVIRONMENTS:
        return refuse(404, _("Det finns ingen sådan miljö."))
    current = tenant.portals.get(environment)
    problems = FormProblems()
    url = portal_url(request.form.get("url", ""), problems)
    token = portal_token(request.form.get("token", ""), problems, required=current is None)
    if not problems:
        checked = probe(state().services.portal_session, url, token or current.token.reveal())  # type: ignore[union-attr]
        if not checked.ok:
            problems.add("url", " ".join(checked.problems))
    if problems:
        return _render(
            tenant, person, status=400, problems=problems, environment=environment, typed_url=url
        )
    portals = dict(tenant.portals)
    portals[environment] = PortalEnvironment(
        url=url,
        token=Secret(token) if token else current.token,  # type: ignore[union-attr]
    )
    waiting = not tenant.enabled and not tenant.portals and environment == tenant.environment
    state().services.registry.save(
        replace(tenant, portals=portals, enabled=True if waiting else tenant.enabled)
    )
    if token:
        with redis_errors():
            state().services.redis.hset(_set_at_key(tenant.id), environment, now_iso())
    return redirect(url_for("portal.portals", tenant_id=tenant.id, saved=environment), code=303)


@blueprint.post("/skola/<tenant_id>/portaler/<environment>/testa")
@school_page
def check(tenant_id: str, environment: str, person: Person) -> BaseResponse | tuple[str, int]:
    tenant = _school(tenant_id)
    if tenant is None:
        return redirect(url_for("care.school", tenant_id=tenant_id))
    stored = tenant.portals.get(environment)
    if stored is None:
        return refuse(409, _("Spara portalens adress och token först."))
    checked = probe(state().services.portal_session, stored.url, stored.token.reveal())
    return _render(tenant, person, environment=environment, checked=checked)
