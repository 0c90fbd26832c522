"""The portal as an OpenID Connect client of Microsoft Entra ID (multi-tenant, ``organizations``).

``MicrosoftSignIn`` builds the authorization request (code flow with PKCE S256, ``state``,
``nonce``, ``response_mode=query`` so the ``SameSite=Lax`` session cookie comes back with the
answer), redeems the code at the token endpoint with the portal app's secret, validates the ID
token itself and reads the tenant's verified domains from Graph ``/organization``.

ID token validation: RS256 only, signed by a key from the discovery document's ``jwks_uri``
(keys fetched again once when a ``kid`` is unknown), ``aud`` the portal's client id, ``iss``
the discovery issuer with ``{tenantid}`` replaced by the token's own ``tid`` (a GUID), ``nonce``
the one sent, and ``exp``/``nbf``/``iat`` within two minutes of skew.

Failure policy: everything the identity provider or the browser sends that does not hold
raises ``SignInError`` with a sentence for the person (no token or secret in it).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jwt
import requests

TIMEOUT_SECONDS = 15
CLOCK_SKEW_SECONDS = 120
DISCOVERY_MAX_AGE_SECONDS = 3600
AUTHORITY_TENANT = "organizations"
SCOPES = "openid profile email User.Read"
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class SignInError(Exception):
    """The sign-in cannot go on; the message says why, for the person signing in."""


@dataclass(frozen=True)
class MicrosoftSettings:
    """Where Entra is and who the portal is there."""

    authority: str  # e.g. https://127.0.0.1:PORT (the tenant segment is added)
    client_id: str
    client_secret: str
    ca_bundle: str | None = None  # a private CA (the sandbox's), or the system's
    graph_url: str = "https://graph.microsoft.com/v1.0"

    @classmethod
    def from_sandbox_json(cls, path: Path) -> MicrosoftSettings:
        """The ``portal`` app of a sandbox's ``sandbox.json``; ``ValueError`` with a sentence."""
        try:
            info = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read {path}: {exc}") from exc
        app = next((a for a in info.get("apps") or [] if a.get("name") == "portal"), None)
        if not isinstance(info, dict) or app is None or not info.get("authority"):
            raise ValueError(f"{path} has no authority and no 'portal' app under 'apps'")
        return cls(
            authority=str(info["authority"]).rstrip("/"),
            client_id=str(app["client_id"]),
            client_secret=str(app["client_secret"]),
            ca_bundle=info.get("ca_bundle"),
            graph_url=str(info.get("graph_url") or f"{info['authority']}/v1.0"),
        )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class _Session(requests.Session):
    """Sets ``verify`` per request, so ``REQUESTS_CA_BUNDLE`` cannot override the CA."""

    def __init__(self, verify: str | bool) -> None:
        super().__init__()
        self.verify = verify

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kw: Any) -> Any:
        kw.setdefault("verify", self.verify)
        kw.setdefault("timeout", TIMEOUT_SECONDS)
        return super().request(method, url, *args, **kw)


@dataclass(frozen=True)
class Pending:
    """What the portal keeps (in the signed session) between the redirect and the answer."""

    state: str
    nonce: str
    verifier: str
    redirect_uri: str

    def as_dict(self) -> dict[str, str]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Identity:
    """A validated sign-in: the ID token's claims and the tenant's verified domains."""

    claims: dict[str, Any]
    verified_domains: tuple[str, ...]

    @property
    def tenant_id(self) -> str:
        return str(self.claims["tid"])

    @property
    def object_id(self) -> str:
        return str(self.claims["oid"])


class MicrosoftSignIn:
    """One per portal process; thread-safe."""

    def __init__(self, settings: MicrosoftSettings) -> None:
        self.settings = settings
        self.http = _Session(settings.ca_bundle or True)
        self._lock = threading.Lock()
        self._discovery: dict[str, Any] | None = None
        self._discovered_at = 0.0
        self._keys: dict[str, Any] = {}

    # --- discovery -----------------------------------------------------------------------------

    def _get_json(self, url: str) -> Any:
        try:
            response = self.http.get(url)
            response.raise_for_status()
            return response.json()
        except (requests.RequestException, ValueError) as exc:
            raise SignInError(
                "Microsoft-inloggningen svarar inte just nu. / Microsoft sign-in is not "
                "answering right now."
            ) from exc

    def discovery(self) -> dict[str, Any]:
        with self._lock:
            fresh = time.monotonic() - self._discovered_at < DISCOVERY_MAX_AGE_SECONDS
            if self._discovery is not None and fresh:
                return self._discovery
        url = f"{self.settings.authority}/{AUTHORITY_TENANT}/v2.0/.well-known/openid-configuration"
        document = self._get_json(url)
        with self._lock:
            self._discovery, self._discovered_at = document, time.monotonic()
        return dict(document)

    def _key(self, kid: str) -> Any:
        with self._lock:
            key = self._keys.get(kid)
        if key is not None:
            return key
        keys = self._get_json(self.discovery()["jwks_uri"]).get("keys", [])
        loaded = {}
        for entry in keys:
            try:
                loaded[entry["kid"]] = jwt.PyJWK(entry, algorithm="RS256").key
            except (jwt.PyJWKError, KeyError):
                continue
        with self._lock:
            self._keys = loaded
        if kid not in loaded:
            raise SignInError(
                "Inloggningen kunde inte styrkas. / The sign-in could not be verified."
            )
        return loaded[kid]

    # --- the flow ------------------------------------------------------------------------------

    def start(self, redirect_uri: str, *, login_hint: str = "") -> tuple[str, Pending]:
        """The URL to send the browser to, and what to keep until it comes back."""
        pending = Pending(
            state=secrets.token_urlsafe(24),
            nonce=secrets.token_urlsafe(24),
            verifier=secrets.token_urlsafe(48),
            redirect_uri=redirect_uri,
        )
        challenge = _b64(hashlib.sha256(pending.verifier.encode()).digest())
        query = {
            "client_id": self.settings.client_id,
            "response_type": "code",
            "redirect_uri": redirect_uri,
            "response_mode": "query",
            "scope": SCOPES,
            "state": pending.state,
            "nonce": pending.nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        if login_hint:
            query["login_hint"] = login_hint
        return f"{self.discovery()['authorization_endpoint']}?{urlencode(query)}", pending

    def finish(self, pending: Pending, answer: dict[str, str]) -> Identity:
        """Check the answer against what was sent, redeem the code, validate the ID token."""
        if not answer.get("state") or not secrets.compare_digest(answer["state"], pending.state):
            raise SignInError(
                "Inloggningen hörde inte till den här webbläsaren. Försök igen. / The sign-in did "
                "not belong to this browser. Please try again."
            )
        if answer.get("error"):
            raise SignInError(
                "Microsoft avbröt inloggningen. / Microsoft stopped the sign-in: "
                f"{answer.get('error')}."
            )
        code = answer.get("code")
        if not code:
            raise SignInError("Svaret från Microsoft saknar kod. / Microsoft's answer had no code.")
        try:
            response = self.http.post(
                self.discovery()["token_endpoint"],
                data={
                    "grant_type": "authorization_code",
                    "client_id": self.settings.client_id,
                    "client_secret": self.settings.client_secret,
                    "code": code,
                    "redirect_uri": pending.redirect_uri,
                    "code_verifier": pending.verifier,
                    "scope": SCOPES,
                },
            )
            body = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise SignInError(
                "Microsoft-inloggningen svarar inte just nu. / Microsoft sign-in is not "
                "answering right now."
            ) from exc
        if response.status_code != 200 or "id_token" not in body:
            raise SignInError(
                "Microsoft godtog inte inloggningen. Försök igen. / Microsoft did not accept the "
                "sign-in. Please try again."
            )
        claims = self.validate(str(body["id_token"]), nonce=pending.nonce)
        domains = self._verified_domains(str(body.get("access_token", "")), claims)
        return Identity(claims, domains)

    def validate(self, token: str, *, nonce: str, now: float | None = None) -> dict[str, Any]:
        """The claims of a genuine, current ID token for this portal; ``SignInError`` else."""
        refused = SignInError(
            "Inloggningen kunde inte styrkas. / The sign-in could not be verified."
        )
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise refused from exc
        if header.get("alg") != "RS256" or not isinstance(header.get("kid"), str):
            raise refused
        tid = str(unverified.get("tid", ""))
        if not GUID.match(tid):
            raise refused
        issuer = str(self.discovery()["issuer"]).replace("{tenantid}", tid)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key(header["kid"]),
                algorithms=["RS256"],
                audience=self.settings.client_id,
                issuer=issuer,
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["exp", "iat", "nbf", "iss", "aud", "tid", "oid", "nonce"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise SignInError(
                "Inloggningen har gått ut. Logga in igen. / The sign-in has expired. Please sign "
                "in again."
            ) from exc
        except jwt.PyJWTError as exc:
            raise refused from exc
        if not secrets.compare_digest(str(claims["nonce"]), nonce):
            raise refused
        issued = float(claims["iat"])
        if issued > (now or time.time()) + CLOCK_SKEW_SECONDS:
            raise refused
        return claims

    def _verified_domains(self, access_token: str, claims: dict[str, Any]) -> tuple[str, ...]:
        try:
            response = self.http.get(
                f"{self.settings.graph_url}/organization",
                headers={"Authorization": f"Bearer {access_token}"},
            )
            organisations = response.json().get("value", []) if response.ok else []
        except (requests.RequestException, ValueError):
            organisations = []
        for organisation in organisations:
            if organisation.get("id") == claims["tid"]:
                return tuple(
                    str(d["name"]).lower()
                    for d in organisation.get("verifiedDomains", [])
                    if d.get("name")
                )
        return ()
