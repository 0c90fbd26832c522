"""Connecting a school (Microsoft's admin consent, then registering the tenant) and
disconnecting it.

The consent callback registers the tenant as ``skolsynk tenant add`` does, through the registry,
on the test environment; it waits, disabled, until its test portal is set. The consent's
``tenant`` must be the signed-in administrator's own tenant. Disconnecting deletes the school's
subscriptions and forgets its settings and run state (no more jobs can write for it); its audit
log stays until it ages out (six months).
"""

from __future__ import annotations

from flask import Blueprint, redirect, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from admin import preview_views
from admin.access import current_person, school_page, signed_in
from admin.forms import FormProblems, typed_name_matches
from admin.identity import Person
from admin.pages import find_school, page, refuse
from admin.portal_views import forget_token_times
from admin.signin_views import redirect_uri
from admin.state import state
from common.errors import NeedsAttention, SkolsynkError
from common.state.dispatch import drop_tenant_jobs
from common.state.registry import Tenant
from common.state.subscription_lifecycle import remove_subscriptions

blueprint = Blueprint("connect", __name__)


@blueprint.post("/skola/<tenant_id>/anslut")
@school_page
def connect(tenant_id: str, person: Person) -> BaseResponse | tuple[str, int]:
    if person.tenant_id != tenant_id or not person.global_admin:
        return refuse(
            403,
            _("Bara en global administratör i skolans egen Microsoft 365 kan ansluta skolan."),
        )
    if find_school(state().services, tenant_id) is not None:
        return redirect(url_for("care.school", tenant_id=tenant_id), code=303)
    return redirect(
        state().signin.begin_consent(person, redirect_uri("connect.consented")), code=303
    )


@blueprint.get("/consent/callback")
@signed_in
def consented() -> BaseResponse | tuple[str, int]:
    person = current_person()
    assert person is not None
    tenant_id = state().signin.finish_consent(person, request.args)
    registry = state().services.registry
    if find_school(state().services, tenant_id) is None:
        try:
            registry.add(Tenant(id=tenant_id, name=person.organisation, enabled=False))
        except NeedsAttention:
            # a double submit, or another administrator of the same school was quicker
            if find_school(state().services, tenant_id) is None:
                return refuse(
                    409,
                    _(
                        "En annan skola med namnet %(name)s är redan ansluten. Kontakta "
                        "portalens support.",
                        name=person.organisation,
                    ),
                )
    return redirect(url_for("care.school", tenant_id=tenant_id, connected=1), code=303)


@blueprint.post("/skola/<tenant_id>/koppla-fran")
@school_page
def disconnect(tenant_id: str, person: Person) -> BaseResponse | tuple[str, int]:
    tenant = find_school(state().services, tenant_id)
    if tenant is None:
        return redirect(url_for("care.school", tenant_id=tenant_id), code=303)
    problems = FormProblems()
    typed_name_matches(request.form.get("confirm_name", ""), tenant.name, problems)
    if problems:
        return page("disconnect.html", 400, tenant=tenant, problems=problems, person=person)
    svc = state().services
    try:
        removed = remove_subscriptions(svc.graph(tenant.id), state().subscriptions, tenant.id)
    except SkolsynkError:
        # without consent or Graph the subscriptions cannot be deleted there; they expire
        # within days, and their notifications are refused once the tenant is unknown
        removed = 0
        for record in state().subscriptions.for_tenant(tenant.id):
            state().subscriptions.remove(record)
    svc.registry.remove(tenant.id)
    drop_tenant_jobs(state().dispatcher, tenant.id)
    # what the app kept of its own for the school; its audit log stays until it ages out
    forget_token_times(tenant.id)
    preview_views.forget(svc.redis, tenant.id)
    return page("disconnected.html", gone=tenant, subscriptions=removed, person=person)


@blueprint.get("/skola/<tenant_id>/koppla-fran")
@school_page
def disconnect_form(tenant_id: str, person: Person) -> BaseResponse | tuple[str, int]:
    tenant = find_school(state().services, tenant_id)
    if tenant is None:
        return redirect(url_for("care.school", tenant_id=tenant_id), code=303)
    return page("disconnect.html", tenant=tenant, problems=FormProblems(), person=person)
