"""An authorize request, checked the way Entra checks it once the client and its redirect URI
are trusted: ``response_mode``, ``response_type``, ``scope``, PKCE's ``code_challenge`` and
``code_challenge_method``, ``prompt``; and how answers go back to the app.

Failure policy: a request Entra would refuse raises ``Refused`` carrying the answer: the error
(``error``, ``error_description`` with its AADSTS code, and ``state``) sent to the redirect URI.
"""

from __future__ import annotations

from dataclasses import dataclass

from werkzeug.wrappers import Request, Response

from sandbox.graph.identity import App
from sandbox.graph.scopes import ScopeError, parse_scopes
from sandbox.graph.signin_pages import deliver, error_fields

#: Entra refuses requests whose query string is longer than this (AADSTS90015)
MAX_REQUEST_BYTES = 8192
RESPONSE_MODES = ("query", "fragment", "form_post")
PROMPTS = ("none", "login", "consent", "select_account")
CHALLENGE_METHODS = ("S256", "plain")


@dataclass(frozen=True)
class AuthRequest:
    """An authorize request whose client and redirect URI are trusted."""

    tenant_key: str
    client_id: str
    redirect_uri: str
    response_mode: str
    state: str | None
    scopes: tuple[str, ...] = ()
    nonce: str | None = None
    code_challenge: str | None = None
    code_challenge_method: str = "plain"
    prompt: str | None = None
    login_hint: str = ""
    domain_hint: str = ""
    purpose: str = "authorize"  # or "consent" (admin consent), see ``consent``
    consent_version: str = ""
    consent_scope: str = ""

    def back(self, fields: dict[str, str]) -> Response:
        """Send ``fields`` (and ``state``) to the app's redirect URI."""
        if self.state is not None:
            fields = {**fields, "state": self.state}
        return deliver(self.redirect_uri, self.response_mode, fields)

    def refuse(self, error: str, aadsts: int, description: str) -> Response:
        return self.back(error_fields(error, aadsts, description))


class Refused(Exception):
    """The request ends with this response (an error page or an error sent back)."""

    def __init__(self, response: Response) -> None:
        super().__init__("refused")
        self.response = response


def request_params(request: Request) -> dict[str, str]:
    """The parameters of a GET (query) or POST (form) authorize request."""
    source = request.form if request.method == "POST" else request.args
    return {k: v for k, v in source.items()}


def checked_request(
    params: dict[str, str], tenant_key: str, app: App, redirect_uri: str
) -> AuthRequest:
    """The authorize request of a trusted client, or ``Refused`` with the error sent back."""
    mode = params.get("response_mode") or "query"
    state = params.get("state")
    base = AuthRequest(tenant_key, app.client_id, redirect_uri, "query", state)
    if mode not in RESPONSE_MODES:
        raise Refused(
            base.refuse(
                "invalid_request",
                900144 if not mode else 90005,
                f"The value '{mode}' of the parameter 'response_mode' is not supported.",
            )
        )
    base = AuthRequest(tenant_key, app.client_id, redirect_uri, mode, state)
    response_type = params.get("response_type", "")
    if not response_type:
        raise Refused(
            base.refuse(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'response_type'.",
            )
        )
    if response_type != "code":
        raise Refused(
            base.refuse(
                "unsupported_response_type",
                700054,
                f"response_type '{response_type}' is not enabled for the application.",
            )
        )
    if not params.get("scope", "").strip():
        raise Refused(
            base.refuse(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'scope'.",
            )
        )
    try:
        scopes = parse_scopes(params["scope"], app)
    except ScopeError as exc:
        raise Refused(base.refuse(exc.error, exc.aadsts, exc.description)) from exc
    if "openid" not in scopes and not any(s not in ("profile", "email") for s in scopes):
        raise Refused(
            base.refuse("invalid_scope", 70011, "The provided value for scope is not valid.")
        )
    challenge = params.get("code_challenge") or None
    method = params.get("code_challenge_method") or "plain"
    if challenge is not None and (
        method not in CHALLENGE_METHODS or not 43 <= len(challenge) <= 128
    ):
        raise Refused(
            base.refuse(
                "invalid_request",
                501491,
                "Invalid size of Code_Challenge parameter."
                if method in CHALLENGE_METHODS
                else f"Invalid code_challenge_method '{method}'; use S256 or plain.",
            )
        )
    prompt = params.get("prompt") or None
    if prompt is not None and prompt not in PROMPTS:
        raise Refused(
            base.refuse(
                "invalid_request",
                90023,
                f"Invalid value '{prompt}' for the parameter 'prompt'.",
            )
        )
    return AuthRequest(
        tenant_key,
        app.client_id,
        redirect_uri,
        mode,
        state,
        scopes=scopes,
        nonce=params.get("nonce"),
        code_challenge=challenge,
        code_challenge_method=method,
        prompt=prompt,
        login_hint=params.get("login_hint", "")[:113],
        domain_hint=params.get("domain_hint", ""),
    )
