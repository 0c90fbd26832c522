"""The first page, signing in and out, and where a person lands after signing in."""

from __future__ import annotations

from flask import Blueprint, Response, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response as BaseResponse

from admin.access import current_person, sign_in_as, signed_in
from admin.pages import find_school, page, refuse
from admin.state import state

blueprint = Blueprint("signin", __name__)

#: what a person without the rights is told (the guide's sentence, and who has them)
NOT_AN_ADMINISTRATOR = _l(
    "Skolsynk kräver ett Microsoft-konto med fullständiga rättigheter i er domän (global "
    "administratör). Den som sköter skolans Microsoft 365, oftast kommunens eller skolans "
    "IT-avdelning, har ett sådant konto: be den personen att logga in."
)


def redirect_uri(endpoint: str) -> str:
    """An absolute callback URL: under ``SKOLSYNK_ADMIN_URL`` when set, else this host."""
    base = state().config.admin_url
    if base:
        return base.rstrip("/") + url_for(endpoint)
    return url_for(endpoint, _external=True)


@blueprint.get("/")
def first_page() -> BaseResponse | tuple[str, int]:
    person = current_person()
    if person is None:
        return page("first.html")
    if person.operator:
        return redirect(url_for("signin.schools"))
    return redirect(url_for("care.school", tenant_id=person.tenant_id))


@blueprint.post("/login")
def login() -> BaseResponse:
    hint = request.form.get("login_hint", "").strip()[:256]
    return redirect(state().signin.begin(redirect_uri("signin.callback"), login_hint=hint or None))


@blueprint.route("/auth/callback", methods=["GET", "POST"])
def callback() -> BaseResponse | tuple[str, int]:
    """Microsoft posts the answer here (``form_post``); its ``state`` is the CSRF check, and
    the session cookie does not come along (SameSite=Lax), nor is it needed."""
    person = state().signin.finish(request.form if request.method == "POST" else request.args)
    if not (person.global_admin or person.operator):
        session.clear()
        return refuse(403, str(NOT_AN_ADMINISTRATOR), title=_("Du saknar behörighet"))
    sign_in_as(person)
    return redirect(url_for("signin.first_page"))


@blueprint.post("/logout")
def logout() -> Response:
    session.clear()
    response = redirect(url_for("signin.first_page"), code=303)
    return response  # type: ignore[return-value]


@blueprint.get("/skolor")
@signed_in
def schools() -> tuple[str, int] | BaseResponse:
    """The operators' list of every school; an administrator sees only their own."""
    person = current_person()
    assert person is not None
    if not person.operator:
        return redirect(url_for("care.school", tenant_id=person.tenant_id))
    tenants = state().services.registry.all()
    own = find_school(state().services, person.tenant_id)
    return page("schools.html", tenants=tenants, own_connected=own is not None, person=person)
