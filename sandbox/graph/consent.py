"""Admin consent: ``/{tenant|common|organizations}/adminconsent`` and
``/{tenant}/v2.0/adminconsent``, the sign-in they need, and the consent page.

An administrator signs in (or already has the sandbox's session), sees what the app asks for
and accepts for the whole organisation; only a Global Administrator or a Privileged Role
Administrator can. Afterwards the app's client-credentials grant works in that tenant.
Answers go back to the app's redirect URI as Entra sends them: ``admin_consent=True``,
``tenant`` (and ``scope`` on v2.0) and ``state``; or ``error=access_denied`` with AADSTS65004
(declined) or AADSTS90094 (the person may not consent for the organisation).

Failure policy: like ``signin``: untrusted clients and redirect URIs get an error page; a used
or forged consent form gets an error page; nothing changes unless an administrator accepts.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import asdict, replace

from werkzeug.wrappers import Request, Response

from sandbox.graph.auth import APP_ROLES
from sandbox.graph.authorize_request import AuthRequest, Refused
from sandbox.graph.identity import FLOW_LIFETIME_SECONDS
from sandbox.graph.roles import CONSENTING_ROLES, roles_of
from sandbox.graph.signin import SignIn
from sandbox.graph.signin_pages import error_page, page
from sandbox.graph.store import DirObject, Tenant
from sandbox.graph.tokens import live_user

PERMISSION_TEXT = {
    "Directory.ReadWrite.All": "Read and write directory data",
    "EduRoster.ReadWrite.All": "Read and write the organization's roster",
    "Group.ReadWrite.All": "Read and write all groups",
    "GroupMember.ReadWrite.All": "Read and write all group memberships",
    "User.ReadWrite.All": "Read and write all users' full profiles",
}
DELEGATED_TEXT = (
    "Sign in and read user profile",
    "Maintain access to data you have given it access to",
)


def _can_consent(signin: SignIn, tenant: Tenant, user: DirObject) -> bool:
    return bool(CONSENTING_ROLES & set(roles_of(signin.identity, tenant, user.id)))


def consent_page(signin: SignIn, auth: AuthRequest, tenant: Tenant, user: DirObject) -> Response:
    """The page asking an administrator to accept the app for the organisation."""
    app = signin.identity.app_by_client_id(auth.client_id)
    token = signin.registry.sign(
        {
            "p": "consent",
            "id": secrets.token_urlsafe(12),
            "exp": time.time() + FLOW_LIFETIME_SECONDS,
            "tid": tenant.id,
            "oid": user.id,
            "rq": asdict(auth),
        }
    )
    permissions = (
        [PERMISSION_TEXT.get(r, r) for r in APP_ROLES] if app and app.name == "skolsynk" else []
    )
    return page(
        "consent.html",
        title="Permissions requested",
        upn=user.props.get("userPrincipalName"),
        app_name=app.display_name if app else auth.client_id,
        tenant_name=tenant.name,
        permissions=[*permissions, *DELEGATED_TEXT],
        can_consent=_can_consent(signin, tenant, user),
        consent_token=token,
        action=f"/{auth.tenant_key}/consent/set",
    )


def admin_consent(signin: SignIn, request: Request, tenant_key: str, version: str) -> Response:
    """``GET /{tenant}/adminconsent`` (``version`` "") or ``/{tenant}/v2.0/adminconsent``."""
    try:
        signin.check_size(request)
        params = {k: v for k, v in request.args.items()}
        directory = signin.directory(tenant_key)
        app, redirect_uri = signin.trusted_client(params, tenant_key)
    except Refused as refused:
        return refused.response
    auth = AuthRequest(
        tenant_key,
        app.client_id,
        redirect_uri,
        "query",
        params.get("state"),
        scopes=("openid", "profile"),
        purpose="consent",
        consent_version=version,
        consent_scope=params.get("scope", ""),
        login_hint=params.get("login_hint", "")[:113],
    )
    if version and not auth.consent_scope.strip():
        return auth.refuse(
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'scope'.",
        )
    session = signin.session_user(request)
    if session is not None and (directory is None or session[0].id == directory.id):
        return consent_page(signin, auth, session[0], session[1])
    return signin.sign_in_page(auth, signin.flow_token(auth))


def decide(signin: SignIn, request: Request, tenant_key: str) -> Response:
    """The consent page's post: accept or cancel."""
    token = request.form.get("consentToken", "")
    data = signin.registry.read(token) if token else None
    if (
        not data
        or data.get("p") != "consent"
        or not isinstance(data.get("rq"), dict)
        or data["rq"].get("tenant_key") != tenant_key
    ):
        return error_page(90100, "The consent request is empty or invalid.")
    if data.get("exp", 0) < time.time():
        return error_page(50089, "Authentication failed due to flow token expired.")
    try:
        auth = replace(AuthRequest(**data["rq"]), scopes=tuple(data["rq"]["scopes"]))
    except TypeError:
        return error_page(90100, "The consent request is empty or invalid.")
    tenant = signin.registry.tenants.get(str(data.get("tid")))
    user = live_user(tenant, str(data.get("oid"))) if tenant is not None else None
    if tenant is None or user is None:
        return error_page(50057, "The user account is disabled or no longer exists.")
    if not signin.identity.use_flow("consent:" + str(data.get("id")), float(data["exp"])):
        return error_page(
            90100, "This consent form was already used. Start again from the application."
        )
    if request.form.get("decision") != "accept":
        return auth.refuse("access_denied", 65004, "User declined to consent to access the app.")
    if not _can_consent(signin, tenant, user):
        return auth.refuse(
            "access_denied",
            90094,
            "The grant requires admin permission. Only a Global Administrator or a Privileged "
            "Role Administrator can consent for the organization.",
        )
    signin.identity.grant_consent(tenant.id, auth.client_id)
    fields = {"admin_consent": "True", "tenant": tenant.id}
    if auth.consent_version:
        fields["scope"] = auth.consent_scope
    return auth.back(fields)
