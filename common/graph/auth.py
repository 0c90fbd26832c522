"""Application tokens for Microsoft Graph, one MSAL confidential client per customer tenant.

Failure policy: Entra ID refusing the application (wrong or expired secret, application unknown
in the tenant, unknown tenant) raises ``GraphAuthError`` with a sentence saying which; an
identity platform that cannot be reached or answers 5xx raises ``GraphUnavailable``. MSAL and
``requests`` exceptions are translated here, once. Tokens and secrets never appear in messages
or logs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import msal
import requests

from common.config import Secret
from common.errors import GraphAuthError, GraphUnavailable

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
#: the public cloud's authority host; any other host (the sandbox) skips instance discovery
PUBLIC_AUTHORITY_HOST = "login.microsoftonline.com"
DEFAULT_REFRESH_MARGIN_SECONDS = 300.0

#: Entra error codes (AADSTS...) that mean the tenant itself is unknown
_UNKNOWN_TENANT_CODES = frozenset({90002, 90072})
#: Entra error codes that mean the identity platform failed, not our request
_SERVER_ERRORS = frozenset({"temporarily_unavailable", "server_error"})


@dataclass
class _CachedToken:
    value: str
    #: ``time.monotonic()`` after which the token is too close to expiry to hand out
    renew_after: float


class MsalTokenProvider:
    """Hands out Graph access tokens per tenant, reusing each until it is close to expiry.

    Thread-safe: one lock guards the table of clients, one lock per tenant serialises token
    requests so that concurrent callers of the same tenant share one round trip.
    """

    def __init__(
        self,
        authority: str,
        client_id: str,
        client_secret: Secret,
        session: requests.Session,
        *,
        refresh_margin_seconds: float = DEFAULT_REFRESH_MARGIN_SECONDS,
    ) -> None:
        self.authority = authority.rstrip("/")
        self.client_id = client_id
        self._client_secret = client_secret
        self._session = session
        self.refresh_margin_seconds = refresh_margin_seconds
        self._apps: dict[str, msal.ConfidentialClientApplication] = {}
        self._tokens: dict[str, _CachedToken] = {}
        self._tenant_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def token(self, tenant_id: str) -> str:
        """A valid access token for Graph in ``tenant_id``."""
        cached = self._tokens.get(tenant_id)
        if cached is not None and time.monotonic() < cached.renew_after:
            return cached.value
        with self._tenant_lock(tenant_id):
            cached = self._tokens.get(tenant_id)
            if cached is not None and time.monotonic() < cached.renew_after:
                return cached.value
            app = self._app(tenant_id)
            result = self._acquire(app, tenant_id)
            if (
                result.get("token_source") == "cache"
                and float(result.get("expires_in", 0)) <= self.refresh_margin_seconds
            ):
                # MSAL keeps a token until 5 minutes before expiry; our margin may be wider
                _forget_access_tokens(app)
                result = self._acquire(app, tenant_id)
            token = str(result["access_token"])
            lifetime = float(result.get("expires_in", 0))
            self._tokens[tenant_id] = _CachedToken(
                token, time.monotonic() + lifetime - self.refresh_margin_seconds
            )
            return token

    def invalidate(self, tenant_id: str) -> None:
        """Forget the tenant's token so that the next ``token()`` asks Entra for a new one."""
        with self._tenant_lock(tenant_id):
            self._tokens.pop(tenant_id, None)
            app = self._apps.get(tenant_id)
            if app is not None:
                _forget_access_tokens(app)

    # --- internals -----------------------------------------------------------------------------

    def _tenant_lock(self, tenant_id: str) -> threading.Lock:
        with self._lock:
            lock = self._tenant_locks.get(tenant_id)
            if lock is None:
                lock = self._tenant_locks[tenant_id] = threading.Lock()
            return lock

    def _app(self, tenant_id: str) -> msal.ConfidentialClientApplication:
        app = self._apps.get(tenant_id)
        if app is not None:
            return app
        authority = f"{self.authority}/{tenant_id}"
        public = urlsplit(self.authority).hostname == PUBLIC_AUTHORITY_HOST
        try:
            # MSAL reads the tenant's OpenID configuration here: an unknown tenant fails now
            app = msal.ConfidentialClientApplication(
                self.client_id,
                client_credential=self._client_secret.reveal(),
                authority=authority,
                http_client=self._session,
                instance_discovery=public,
            )
        except ValueError as exc:
            raise GraphAuthError(
                f"Entra ID does not know the tenant {tenant_id}: its sign-in configuration "
                "could not be read. Check the tenant id."
            ) from exc
        except requests.RequestException as exc:
            raise GraphUnavailable(
                f"The Microsoft identity platform could not be reached for tenant {tenant_id} "
                f"({type(exc).__name__})."
            ) from exc
        self._apps[tenant_id] = app
        return app

    def _acquire(
        self, app: msal.ConfidentialClientApplication, tenant_id: str
    ) -> Mapping[str, Any]:
        try:
            result: Mapping[str, Any] | None = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
        except requests.RequestException as exc:
            raise GraphUnavailable(
                f"The Microsoft identity platform could not be reached for tenant {tenant_id} "
                f"({type(exc).__name__})."
            ) from exc
        except ValueError as exc:  # MSAL raises it for an answer it cannot parse
            raise GraphUnavailable(
                f"The Microsoft identity platform gave an unreadable answer for tenant {tenant_id}."
            ) from exc
        if result and "access_token" in result:
            return result
        raise _token_error(tenant_id, result or {})


def _forget_access_tokens(app: msal.ConfidentialClientApplication) -> None:
    cache = app.token_cache
    for entry in list(cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)):
        cache.remove_at(entry)


def _token_error(tenant_id: str, result: Mapping[str, Any]) -> Exception:
    """The error for a token answer without a token (never quoting the answer whole)."""
    error = str(result.get("error") or "unknown_error")
    codes = {int(c) for c in result.get("error_codes") or () if str(c).isdigit()}
    reference = f" ({error}{', AADSTS' + str(min(codes)) if codes else ''})"
    if error in _SERVER_ERRORS:
        return GraphUnavailable(
            f"The Microsoft identity platform failed to issue a token for tenant "
            f"{tenant_id}{reference}; try again later."
        )
    if codes & _UNKNOWN_TENANT_CODES:
        return GraphAuthError(
            f"Entra ID does not know the tenant {tenant_id}{reference}. Check the tenant id."
        )
    if error == "invalid_client":
        return GraphAuthError(
            f"Entra ID refused the application's credentials for tenant {tenant_id}"
            f"{reference}: the client secret is wrong or has expired."
        )
    if error == "unauthorized_client":
        return GraphAuthError(
            f"The application is not registered or not consented in tenant {tenant_id}"
            f"{reference}: the school's administrator must give admin consent."
        )
    return GraphAuthError(f"Entra ID refused to issue a token for tenant {tenant_id}{reference}.")
