"""People signing in: ``/{tenant|common|organizations}/oauth2/v2.0/authorize`` (authorization
code flow with PKCE), the sign-in page and its form post, the sign-in session, and logout.

The sign-in page is shaped like Microsoft's: a form with ``loginfmt`` and ``passwd`` posting to
``/{tenant}/login`` on the same origin, with a signed, single-use ``flowToken`` carrying the
checked authorize request; one post with both fields signs in. A signed-in person gets the
sandbox's session cookie (``ESTSAUTH``, like Entra's), so ``prompt=none`` and later sign-ins
need no form. Every person of a tenant has the sandbox's ``people_password``.

Failure policy, as Entra's: a request whose client or redirect URI cannot be trusted (unknown
app, unregistered redirect URI, unknown tenant, oversized request) gets an error page and is
never redirected; other refusals go back to the app with ``error``/``error_description`` (and
``state``). A wrong password or unknown user shows the sign-in page again with the error; a
user of another tenant on a tenant's own authority, a disabled account or a used or expired
form get an error page.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from sandbox.graph.authorize_request import (
    MAX_REQUEST_BYTES,
    AuthRequest,
    Refused,
    checked_request,
    request_params,
)
from sandbox.graph.identity import (
    CODE_LIFETIME_SECONDS,
    FLOW_LIFETIME_SECONDS,
    SESSION_LIFETIME_SECONDS,
    App,
    Grant,
)
from sandbox.graph.signin_pages import deliver, error_page, page
from sandbox.graph.store import USER, DirObject, Tenant
from sandbox.graph.tokens import ORGANIZATION_KEYS, live_user

if TYPE_CHECKING:
    from sandbox.graph.registry import Registry

SESSION_COOKIE = "ESTSAUTH"
PAGE_TITLE = "Sign in to your account"


class SignIn:
    """Answers the authorize, login and logout endpoints for every tenant of a sandbox."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.identity = registry.identity

    # --- the parts the consent endpoints share -------------------------------------------------

    def check_size(self, request: Request) -> None:
        size = len(request.query_string) + (request.content_length or 0)
        if size > MAX_REQUEST_BYTES:
            raise Refused(error_page(90015, "Requested query string is too long."))

    def directory(self, tenant_key: str) -> Tenant | None:
        """The authority's tenant (``None`` for ``common``/``organizations``); error page when
        there is no such tenant."""
        if tenant_key.lower() in ORGANIZATION_KEYS:
            return None
        tenant = self.registry.tenant_by_key(tenant_key)
        if tenant is None:
            raise Refused(
                error_page(
                    90002,
                    f"Tenant '{tenant_key}' not found. Check to make sure you have the correct "
                    "tenant ID and are signing into the correct cloud.",
                )
            )
        return tenant

    def trusted_client(self, params: dict[str, str], tenant_key: str) -> tuple[App, str]:
        """The app and redirect URI of a request, or an error page (never a redirect)."""
        client_id = params.get("client_id", "")
        if not client_id:
            raise Refused(
                error_page(
                    900144, "The request body must contain the following parameter: 'client_id'."
                )
            )
        app = self.identity.app_by_client_id(client_id)
        if app is None:
            raise Refused(
                error_page(
                    700016,
                    f"Application with identifier '{client_id}' was not found in the directory "
                    f"'{tenant_key}'. This can happen if the application has not been installed "
                    "by the administrator of the tenant or consented to by any user in the "
                    "tenant. You may have sent your authentication request to the wrong tenant.",
                )
            )
        redirect_uri = params.get("redirect_uri") or (app.redirect_uris or [""])[0]
        if not redirect_uri:
            raise Refused(error_page(500113, "No reply address is registered for the application."))
        if not app.accepts_redirect(redirect_uri):
            raise Refused(
                error_page(
                    50011,
                    f"The redirect URI '{redirect_uri}' specified in the request does not match "
                    f"the redirect URIs configured for the application '{client_id}'. Make sure "
                    "the redirect URI sent in the request matches one added to your application "
                    "in the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to "
                    "learn more about how to fix this.",
                )
            )
        return app, redirect_uri

    def session_user(self, request: Request) -> tuple[Tenant, DirObject, int] | None:
        """The signed-in person of the sandbox's session cookie, while still able to sign in."""
        cookie = request.cookies.get(SESSION_COOKIE, "")
        data = self.registry.read(cookie) if cookie else None
        if not data or data.get("p") != "session" or data.get("exp", 0) < time.time():
            return None
        tenant = self.registry.tenants.get(str(data.get("tid")))
        user = live_user(tenant, str(data.get("oid"))) if tenant is not None else None
        if tenant is None or user is None:
            return None
        return tenant, user, int(data.get("at", 0))

    def flow_token(self, auth: AuthRequest) -> str:
        return self.registry.sign(
            {
                "p": "flow",
                "id": secrets.token_urlsafe(12),
                "exp": time.time() + FLOW_LIFETIME_SECONDS,
                "rq": asdict(auth),
            }
        )

    def sign_in_page(
        self, auth: AuthRequest, flow: str, *, error: str = "", code: str = "", login: str = ""
    ) -> Response:
        app = self.identity.app_by_client_id(auth.client_id)
        return page(
            "signin.html",
            200,
            title=PAGE_TITLE,
            action=f"/{auth.tenant_key}/login",
            flow_token=flow,
            login_hint=login or auth.login_hint,
            error=error,
            error_code=code,
            purpose=auth.purpose,
            app_name=app.display_name if app else "",
        )

    def issue_code(self, auth: AuthRequest, tenant: Tenant, user: DirObject, at: int) -> Response:
        code = self.identity.new_code(
            Grant(
                client_id=auth.client_id,
                tenant_id=tenant.id,
                user_id=user.id,
                scopes=auth.scopes,
                expires=time.time() + CODE_LIFETIME_SECONDS,
                redirect_uri=auth.redirect_uri,
                nonce=auth.nonce,
                code_challenge=auth.code_challenge,
                code_challenge_method=auth.code_challenge_method,
                auth_time=at,
            )
        )
        return auth.back({"code": code, "session_state": tenant.id})

    def with_session(self, response: Response, tenant: Tenant, user: DirObject, at: int) -> None:
        token = self.registry.sign(
            {
                "p": "session",
                "tid": tenant.id,
                "oid": user.id,
                "at": at,
                "exp": at + SESSION_LIFETIME_SECONDS,
            }
        )
        response.set_cookie(
            SESSION_COOKIE, token, httponly=True, secure=True, samesite="None", path="/"
        )

    # --- authorize -----------------------------------------------------------------------------

    def authorize(self, request: Request, tenant_key: str) -> Response:
        try:
            self.check_size(request)
            params = request_params(request)
            directory = self.directory(tenant_key)
            app, redirect_uri = self.trusted_client(params, tenant_key)
            auth = checked_request(params, tenant_key, app, redirect_uri)
        except Refused as refused:
            return refused.response
        session = self.session_user(request)
        if session is not None and directory is not None and session[0].id != directory.id:
            session = None
        if session is not None and auth.login_hint and not _same_upn(session[1], auth.login_hint):
            session = None
        if auth.prompt == "none":
            if session is None:
                return auth.refuse(
                    "login_required",
                    50058,
                    "A silent sign-in request was sent but no user is signed in.",
                )
            return self.issue_code(auth, *session)
        if session is not None and auth.prompt not in ("login", "select_account"):
            return self.issue_code(auth, *session)
        return self.sign_in_page(auth, self.flow_token(auth))

    # --- the sign-in form ----------------------------------------------------------------------

    def login(self, request: Request, tenant_key: str) -> Response:
        """The sign-in form's post: sign in, then continue the request it carries."""
        try:
            self.check_size(request)
            flow = request.form.get("flowToken", "")
            data = self.registry.read(flow) if flow else None
            if not data or data.get("p") != "flow" or not isinstance(data.get("rq"), dict):
                raise Refused(error_page(90100, "flowToken parameter is empty or invalid."))
            if data.get("exp", 0) < time.time():
                raise Refused(error_page(50089, "Authentication failed due to flow token expired."))
            try:
                auth = AuthRequest(**{**data["rq"], "scopes": tuple(data["rq"]["scopes"])})
            except TypeError as exc:
                raise Refused(
                    error_page(90100, "flowToken parameter is empty or invalid.")
                ) from exc
            if auth.tenant_key != tenant_key:
                raise Refused(error_page(90100, "flowToken parameter is empty or invalid."))
            tenant, user = self._credentials(auth, flow, request.form)
            if not self.identity.use_flow(str(data.get("id")), float(data["exp"])):
                raise Refused(
                    error_page(
                        90100,
                        "flowToken parameter is empty or invalid: this sign-in form was "
                        "already used. Start the sign-in again from the application.",
                    )
                )
        except Refused as refused:
            return refused.response
        now = int(time.time())
        if auth.purpose == "consent":
            from sandbox.graph.consent import consent_page

            response = consent_page(self, auth, tenant, user)
        else:
            response = self.issue_code(auth, tenant, user, now)
        self.with_session(response, tenant, user, now)
        return response

    def _credentials(self, auth: AuthRequest, flow: str, form: Any) -> tuple[Tenant, DirObject]:
        login = str(form.get("loginfmt", "")).strip()[:113]
        password = str(form.get("passwd", ""))
        if not login:
            raise Refused(
                self.sign_in_page(
                    auth, flow, error="Enter a valid email address, phone number, or Skype name."
                )
            )
        directory = self.directory(auth.tenant_key)
        found = self._find_person(login)
        if found is None:
            raise Refused(
                self.sign_in_page(
                    auth,
                    flow,
                    login=login,
                    error="This username may be incorrect. Make sure you typed it correctly. "
                    "Otherwise, contact your admin.",
                    code=f"AADSTS50034: The user account {login} does not exist in the "
                    f"{directory.name if directory else 'organizations'} directory. To sign "
                    "into this application, the account must be added to the directory.",
                )
            )
        tenant, user = found
        if directory is not None and directory.id != tenant.id:
            app = self.identity.app_by_client_id(auth.client_id)
            raise Refused(
                error_page(
                    50020,
                    f"User account '{login}' from identity provider "
                    f"'https://sts.windows.net/{tenant.id}/' does not exist in tenant "
                    f"'{directory.name}' and cannot access the application '{auth.client_id}'"
                    f"({app.display_name if app else ''}) in that tenant. The account needs to "
                    "be added as an external user in the tenant first. Sign out and sign in "
                    "again with a different Microsoft Entra user account.",
                )
            )
        if not hmac.compare_digest(password.encode(), self.identity.people_password.encode()):
            raise Refused(
                self.sign_in_page(
                    auth,
                    flow,
                    login=login,
                    error="Your account or password is incorrect. If you don't remember your "
                    "password, reset it now.",
                    code="AADSTS50126: Error validating credentials due to invalid username or "
                    "password.",
                )
            )
        if user.props.get("accountEnabled") is False:
            raise Refused(
                error_page(
                    50057,
                    "The user account is disabled. The account has been disabled by an "
                    "administrator.",
                )
            )
        return tenant, user

    def _find_person(self, login: str) -> tuple[Tenant, DirObject] | None:
        lowered = login.lower()
        for tenant in list(self.registry.tenants.values()):
            user_id = tenant.upns.get(lowered)
            user = tenant.find(USER, user_id) if user_id else None
            if user is not None:
                return tenant, user
        return None

    # --- logout --------------------------------------------------------------------------------

    def logout(self, request: Request, tenant_key: str) -> Response:
        target = request.args.get("post_logout_redirect_uri", "")
        if target and any(a.accepts_redirect(target) for a in self.identity.apps.values()):
            response = deliver(target, "query", {})
        else:
            response = page("signed_out.html", title="Sign out")
        response.delete_cookie(SESSION_COOKIE, path="/", secure=True, samesite="None")
        return response


def _same_upn(user: DirObject, hint: str) -> bool:
    return str(user.props.get("userPrincipalName", "")).lower() == hint.strip().lower()
