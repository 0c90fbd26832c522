"""Sign-in with Microsoft (MSAL's auth-code flow with PKCE) and who the signed-in person is.

MSAL directly rather than Microsoft's ``identity`` package: the sandbox (and any private
authority) needs ``instance_discovery=False`` and our CA-verifying session as MSAL's
``http_client`` (DESIGN §4.10-11), and the flow (state, nonce, PKCE verifier) must stay on the
server, in Redis, so that any admin process can finish a sign-in another one began and nothing
of it reaches the browser but the state.

A person gets in as a school's administrator only when the ID token's ``wids`` has the Global
Administrator role *and* Graph confirms it (``/me/transitiveMemberOf/microsoft.graph.directoryRole``
with the delegated token): the claim can be missing, or stale after a role change. Operators
(``SKOLSYNK_OPERATORS``) get in from any tenant.

Failure policy: every way a sign-in can go wrong raises ``SignInRefused`` with a sentence for a
person (in Swedish, translated by the views); ``requests`` and MSAL errors are translated here.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlencode

import msal
import redis
import requests
from flask_babel import lazy_gettext as _l

from common.config import Config
from common.errors import GraphUnavailable, SkolsynkError
from common.graph.client import GraphClient
from common.http import Transport, VerifyingSession
from common.state.store import KEY_PREFIX, redis_errors

#: Entra's role template id of the Global Administrator (the same in every tenant)
GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
#: delegated scopes of the sign-in: reading one's own profile and directory roles needs no more
SIGNIN_SCOPES = ("User.Read",)
#: how long a started sign-in or consent may take before its state is forgotten
FLOW_TTL_SECONDS = 600
#: longest ``state`` we look up (ours are 43 characters)
MAX_STATE_LENGTH = 200


class SignInRefused(Exception):
    """A sign-in or consent that did not succeed; ``str(exc)`` is a sentence for a person."""

    def __init__(self, message: object, *, status: int = 400) -> None:
        super().__init__(str(message))
        self.status = status


@dataclass(frozen=True)
class Person:
    """The signed-in person, as the session keeps them."""

    tenant_id: str
    object_id: str
    name: str
    username: str
    operator: bool
    global_admin: bool
    organisation: str

    def may_administer(self, tenant_id: str) -> bool:
        """Operators administer every school; a Global Administrator only their own."""
        return self.operator or (self.global_admin and self.tenant_id == tenant_id)

    def to_session(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_session(cls, data: Any) -> Person | None:
        if not isinstance(data, dict):
            return None
        try:
            return cls(**{k: data[k] for k in cls.__dataclass_fields__})
        except (KeyError, TypeError):
            return None


class _DelegatedToken:
    """A token provider for ``GraphClient`` that hands out one delegated access token."""

    def __init__(self, access_token: str) -> None:
        self._token = access_token

    def token(self, tenant_id: str) -> str:
        return self._token

    def invalidate(self, tenant_id: str) -> None:
        return None


def _flow_key(kind: str, state: str) -> str:
    return f"{KEY_PREFIX}admin-flow:{kind}:{state}"


class SignIn:
    """Begins and finishes sign-ins and admin consents for one admin process."""

    def __init__(self, config: Config, session: VerifyingSession, client: redis.Redis) -> None:
        self.config = config
        self.session = session
        self.redis: Any = client
        self._msal: msal.ConfidentialClientApplication | None = None

    def _app(self) -> msal.ConfidentialClientApplication:
        # built on first use: MSAL reads the discovery document when it is created
        if self._msal is None:
            try:
                self._msal = msal.ConfidentialClientApplication(
                    self.config.client_id,
                    client_credential=self.config.client_secret.reveal(),
                    authority=f"{self.config.authority}/organizations",
                    http_client=self.session,
                    instance_discovery=False,
                )
            except (requests.RequestException, ValueError) as exc:
                raise SignInRefused(
                    _l("Microsofts inloggning svarar inte just nu. Försök igen om en stund."),
                    status=503,
                ) from exc
        return self._msal

    # --- sign-in ---------------------------------------------------------------------------

    def begin(self, redirect_uri: str, *, login_hint: str | None = None) -> str:
        """Start a sign-in; returns the Microsoft URL to send the browser to."""
        flow = self._app().initiate_auth_code_flow(
            list(SIGNIN_SCOPES),
            redirect_uri=redirect_uri,
            login_hint=login_hint or None,
            prompt="select_account",
            # the code comes back in a POST body, never in a URL (browser history, logs)
            response_mode="form_post",
        )
        self._keep("signin", flow["state"], flow)
        auth_uri: str = flow["auth_uri"]
        return auth_uri

    def finish(self, answer: Mapping[str, str]) -> Person:
        """Finish a sign-in from Microsoft's answer (the callback's query); who signed in."""
        flow = self._take("signin", answer.get("state", ""))
        if answer.get("error"):
            raise SignInRefused(_entra_error(answer.get("error", "")))
        try:
            result = self._app().acquire_token_by_auth_code_flow(flow, dict(answer))
        except (ValueError, RuntimeError) as exc:
            # MSAL: a state or nonce that does not match, or a malformed answer
            raise SignInRefused(_l("Inloggningen kunde inte kontrolleras. Logga in igen.")) from exc
        except requests.RequestException as exc:
            raise SignInRefused(
                _l("Microsofts inloggning svarar inte just nu. Försök igen om en stund."),
                status=503,
            ) from exc
        if "error" in result or "id_token_claims" not in result:
            raise SignInRefused(_entra_error(str(result.get("error", ""))))
        # MSAL has checked the state and the nonce (its hash) against the flow
        claims: dict[str, Any] = result["id_token_claims"]
        tenant_id = str(claims.get("tid", ""))
        if not tenant_id or claims.get("iss") != f"{self.config.authority}/{tenant_id}/v2.0":
            raise SignInRefused(_l("Inloggningen kom från en okänd utgivare. Logga in igen."))
        username = str(claims.get("preferred_username") or claims.get("email") or "")
        graph = self._graph(tenant_id, str(result["access_token"]))
        try:
            roles = graph.list_all("/me/transitiveMemberOf/microsoft.graph.directoryRole")
            organisations = graph.list_all("/organization")
        except SkolsynkError as exc:
            raise SignInRefused(
                _l("Vi kunde inte läsa dina roller från Microsoft 365. Försök igen om en stund."),
                status=503,
            ) from exc
        confirmed = {str(r.get("roleTemplateId", "")) for r in roles}
        wids = {str(w) for w in claims.get("wids") or ()}
        organisation = next(
            (str(o.get("displayName")) for o in organisations if o.get("displayName")), ""
        )
        return Person(
            tenant_id=tenant_id,
            object_id=str(claims.get("oid", "")),
            name=str(claims.get("name") or username),
            username=username,
            operator=username.casefold() in self.config.operators,
            global_admin=GLOBAL_ADMINISTRATOR in wids and GLOBAL_ADMINISTRATOR in confirmed,
            organisation=organisation or tenant_id,
        )

    # --- admin consent ---------------------------------------------------------------------

    def begin_consent(self, person: Person, redirect_uri: str) -> str:
        """The URL of Microsoft's admin consent for the person's own tenant."""
        state = secrets.token_urlsafe(32)
        self._keep("consent", state, {"tenant_id": person.tenant_id, "oid": person.object_id})
        query = urlencode(
            {
                "client_id": self.config.client_id,
                "scope": "https://graph.microsoft.com/.default",
                "redirect_uri": redirect_uri,
                "state": state,
            }
        )
        return f"{self.config.authority}/{person.tenant_id}/v2.0/adminconsent?{query}"

    def finish_consent(self, person: Person, answer: Mapping[str, str]) -> str:
        """Check Microsoft's consent answer; returns the consented tenant id."""
        began = self._take("consent", answer.get("state", ""))
        if began.get("oid") != person.object_id:
            raise SignInRefused(
                _l("Godkännandet startades av någon annan. Försök igen."), status=403
            )
        if answer.get("error"):
            raise SignInRefused(_entra_error(answer.get("error", "")), status=403)
        tenant = answer.get("tenant", "")
        if tenant != person.tenant_id or tenant != began.get("tenant_id"):
            raise SignInRefused(
                _l("Godkännandet gällde en annan organisation än den du är inloggad i."), status=403
            )
        if answer.get("admin_consent", "").casefold() != "true":
            raise SignInRefused(_l("Microsoft gav inte organisationens godkännande."), status=403)
        return tenant

    # --- state kept on the server ------------------------------------------------------------

    def _keep(self, kind: str, state: str, data: Mapping[str, Any]) -> None:
        with redis_errors():
            self.redis.set(_flow_key(kind, state), json.dumps(dict(data)), ex=FLOW_TTL_SECONDS)

    def _take(self, kind: str, state: str) -> dict[str, Any]:
        """The flow begun with ``state``, at most once."""
        if not state or len(state) > MAX_STATE_LENGTH:
            raise SignInRefused(_l("Inloggningen saknar sitt tillstånd. Logga in igen."))
        with redis_errors():
            raw = self.redis.getdel(_flow_key(kind, state))
        if raw is None:
            raise SignInRefused(_l("Inloggningen har gått ut eller använts redan. Logga in igen."))
        data: dict[str, Any] = json.loads(raw)
        return data

    def _graph(self, tenant_id: str, access_token: str) -> GraphClient:
        transport = Transport(self.session, service="Microsoft Graph", unavailable=GraphUnavailable)
        return GraphClient(
            transport, _DelegatedToken(access_token), self.config.graph_url, tenant_id
        )


#: Entra's error codes people meet, as sentences
_ENTRA_ERRORS = {
    "access_denied": _l("Inloggningen eller godkännandet avbröts eller nekades."),
    "consent_required": _l("Organisationen har inte godkänt Skolsynk ännu."),
    "interaction_required": _l("Microsoft behöver att du loggar in igen."),
    "login_required": _l("Microsoft behöver att du loggar in igen."),
    "invalid_grant": _l("Inloggningen har gått ut eller använts redan. Logga in igen."),
}


def _entra_error(code: str) -> str:
    return str(_ENTRA_ERRORS.get(code, _l("Microsoft kunde inte logga in dig. Försök igen.")))
