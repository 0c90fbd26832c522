"""The portal's sign-in with Microsoft and the signed-in pages.

``/login`` shows the "Logga in med Microsoft" button; ``/login?idp=microsoft`` and
``/?idp=microsoft`` go straight to Microsoft (``login_hint`` passed on). The answer comes back
to ``/auth/microsoft/callback``; then ``/mina-laromedel`` lists the person's licences, and a
teacher's classes with a form to give a licence to a class or a student. ``POST /logout``
ends the session. ``PUT /api/organisations/{org}/microsoft-tenant`` (admin token) says which
Microsoft tenant a school's organisation belongs to.

Sessions are Flask's signed cookie: ``HttpOnly``, ``SameSite=Lax``, ``Secure`` when the request
came over HTTPS. Every form carries a CSRF token (Flask-WTF's ``CSRFProtect``; the SCIM and
JSON API blueprints, which use bearer tokens, are exempt).

Failure policy: a sign-in that cannot go on shows a page saying what is wrong and who can fix it,
in Swedish and English, with 400/403; when Microsoft sign-in is not configured the pages say so
(404).
"""

from __future__ import annotations

import hmac
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.wrappers import Response as WerkzeugResponse

from sandbox.portal import linking, my_licences
from sandbox.portal.context import current
from sandbox.portal.errors import ApiError
from sandbox.portal.microsoft import MicrosoftSignIn, Pending, SignInError

bp = Blueprint("signin", __name__, template_folder="templates")
PENDING = "microsoft_pending"
ACCOUNT = "account"
MAX_HINT_LENGTH = 113

PROBLEMS = {
    linking.NO_ORGANISATION: (
        403,
        "Din skola finns inte i portalen än",
        "Your school is not in the portal yet",
        "Skolans IT-administratör kopplar skolan till portalen (med Skolsynk); kontakta "
        "henne eller honom.",
        "Your school's IT administrator connects the school to the portal (with Skolsynk); "
        "please contact them.",
    ),
    linking.NO_ACCOUNT: (
        403,
        "Du har inget konto i portalen än",
        "You have no account in the portal yet",
        "Konton kommer från skolans elevregister via Microsoft 365. Kontakta skolans "
        "administratör om du borde ha ett.",
        "Accounts come from the school's student register through Microsoft 365. Contact "
        "your school's administrator if you should have one.",
    ),
    linking.DEACTIVATED: (
        403,
        "Ditt konto är inaktiverat",
        "Your account is deactivated",
        "Kontot har stängts av, oftast för att du inte längre finns i skolans Microsoft 365. "
        "Kontakta skolans administratör.",
        "The account has been switched off, usually because you are no longer in the "
        "school's Microsoft 365. Contact your school's administrator.",
    ),
}


def _microsoft() -> MicrosoftSignIn | None:
    client: MicrosoftSignIn | None = current_app.extensions.get("microsoft")
    return client


def _problem(kind: str) -> tuple[str, int]:
    status, sv_title, en_title, sv_text, en_text = PROBLEMS[kind]
    return (
        render_template(
            "signin_problem.html",
            sv_title=sv_title,
            en_title=en_title,
            sv_text=sv_text,
            en_text=en_text,
        ),
        status,
    )


def _failed(error: SignInError) -> tuple[str, int]:
    sv, _, en = str(error).partition(" / ")
    return (
        render_template(
            "signin_problem.html",
            sv_title="Inloggningen misslyckades",
            en_title="The sign-in failed",
            sv_text=sv,
            en_text=en or sv,
        ),
        400,
    )


@bp.before_app_request
def _straight_to_microsoft() -> WerkzeugResponse | None:
    if request.path == "/" and request.args.get("idp") == "microsoft":
        return redirect(url_for("signin.start", login_hint=request.args.get("login_hint", "")))
    return None


@bp.get("/login")
def login() -> Any:
    hint = request.args.get("login_hint", "")[:MAX_HINT_LENGTH]
    if request.args.get("idp") == "microsoft":
        return redirect(url_for("signin.start", login_hint=hint))
    return render_template(
        "login.html",
        configured=_microsoft() is not None,
        login_hint=hint,
        account=session.get(ACCOUNT),
    )


@bp.get("/auth/microsoft")
def start() -> Any:
    client = _microsoft()
    if client is None:
        abort(404, "Inloggning med Microsoft är inte påslagen här. / Microsoft sign-in is off.")
    hint = request.args.get("login_hint", "")[:MAX_HINT_LENGTH]
    try:
        url, pending = client.start(url_for("signin.callback", _external=True), login_hint=hint)
    except SignInError as exc:
        return _failed(exc)
    session[PENDING] = pending.as_dict()
    return redirect(url)


@bp.get("/auth/microsoft/callback")
def callback() -> Any:
    client = _microsoft()
    if client is None:
        abort(404)
    saved = session.pop(PENDING, None)
    try:
        if not isinstance(saved, dict):
            raise SignInError(
                "Inloggningen hörde inte till den här webbläsaren. Försök igen. / The sign-in "
                "did not belong to this browser. Please try again."
            )
        identity = client.finish(Pending(**saved), request.args.to_dict())
    except (SignInError, TypeError) as exc:
        error = exc if isinstance(exc, SignInError) else SignInError("Försök igen. / Try again.")
        return _failed(error)
    portal = current()
    outcome = linking.resolve(portal.db, portal.scim, identity.claims, identity.verified_domains)
    if outcome.kind != linking.SIGNED_IN:
        return _problem(outcome.kind)
    assert outcome.org is not None and outcome.user_id is not None
    session.clear()
    session[ACCOUNT] = {
        "org": outcome.org.name,
        "id": outcome.user_id,
        "oid": identity.object_id,
        "tid": identity.tenant_id,
    }
    return redirect(url_for("signin.mine"))


def _signed_in() -> tuple[Any, dict[str, Any]] | None:
    account = session.get(ACCOUNT)
    if not isinstance(account, dict):
        return None
    portal = current()
    org = portal.db.organisation(str(account.get("org")))
    person = my_licences.person(portal.db, org, str(account.get("id"))) if org else None
    if org is None or person is None or not person["active"]:
        session.clear()
        return None
    return org, person


@bp.get("/mina-laromedel")
def mine() -> Any:
    found = _signed_in()
    if found is None:
        return redirect(url_for("signin.login"))
    org, person = found
    portal = current()
    teacher = my_licences.role_of(portal.db, person["id"]) == "teacher"
    return render_template(
        "my_licences.html",
        person=person,
        org=org.name,
        holdings=my_licences.holdings(portal.db, person["id"]),
        classes=my_licences.classes_of(portal.db, org, person["id"]) if teacher else [],
        teacher=teacher,
        products=my_licences.PRODUCTS,
        given=request.args.get("given"),
    )


@bp.post("/mina-laromedel/licenser")
def give() -> Any:
    found = _signed_in()
    if found is None:
        return redirect(url_for("signin.login"))
    org, person = found
    portal = current()
    if my_licences.role_of(portal.db, person["id"]) != "teacher":
        abort(403, "Bara lärare kan ge licenser. / Only teachers can give licences.")
    try:
        my_licences.give(
            portal.db,
            portal.store,
            org,
            person,
            product=request.form.get("product", ""),
            target=request.form.get("target", ""),
        )
    except ApiError as exc:
        abort(exc.status, exc.message)
    return redirect(url_for("signin.mine", given=request.form.get("product", "")))


@bp.post("/logout")
def logout() -> Any:
    session.clear()
    return redirect(url_for("signin.login"))


@bp.put("/api/organisations/<org>/microsoft-tenant")
def set_tenant(org: str) -> Response:
    portal = current()
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip(), portal.admin_token):
        raise ApiError(401, "the admin token is needed")
    found = portal.db.organisation(org)
    if found is None:
        raise ApiError(404, f"no organisation {org!r}")
    body = request.get_json(silent=True)
    tenant_id = body.get("tenantId") if isinstance(body, dict) else None
    if not isinstance(tenant_id, str) or not linking.GUID.match(tenant_id):
        raise ApiError(400, 'send {"tenantId": "<the tenant\'s GUID>"}')
    linking.set_tenant(portal.db, found, tenant_id)
    return jsonify(organisation=found.name, tenantId=tenant_id)
