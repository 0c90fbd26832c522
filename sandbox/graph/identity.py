"""Entra's side of people signing in: app registrations, the people's password, admin consent,
and the short-lived grants (authorization codes, refresh tokens, used sign-in forms).

Two apps are registered, both multi-tenant and confidential: ``skolsynk`` (the client id and
secret of ``sandbox.json``'s top level, from ``ca.AppRegistration``) and ``portal`` (the
learning-material portal's own app). Each accepts its registered redirect URIs and, so that
local runs need no set-up, any ``http`` URI on a loopback host (as Entra allows for
``http://localhost``). The portal app and the people's password persist in
``DIR/identity.json`` (mode 0600) so that a restarted sandbox keeps them.

Failure policy: lookups answer ``None``/``False``; callers turn that into Entra's errors.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sandbox.graph.ca import AppRegistration

IDENTITY_FILE = "identity.json"
SKOLSYNK_APP = "skolsynk"
PORTAL_APP = "portal"
APP_NAMES = (SKOLSYNK_APP, PORTAL_APP)
APP_DISPLAY_NAMES = {SKOLSYNK_APP: "Skolsynk", PORTAL_APP: "Läromedelsportalen"}
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
#: Entra's authorization codes live about ten minutes
CODE_LIFETIME_SECONDS = 600
#: refresh tokens of confidential web apps live 90 days
REFRESH_TOKEN_LIFETIME_SECONDS = 90 * 24 * 3600
#: a sign-in form must be posted within this long of being shown
FLOW_LIFETIME_SECONDS = 1800
#: how long the sandbox's own sign-in session (its cookie) lasts
SESSION_LIFETIME_SECONDS = 12 * 3600
GRANTS_KEPT = 100_000


@dataclass
class App:
    """One app registration as the sandbox's Entra knows it."""

    name: str
    client_id: str
    client_secret: str
    redirect_uris: list[str] = field(default_factory=list)

    @property
    def display_name(self) -> str:
        return APP_DISPLAY_NAMES.get(self.name, self.name)

    def accepts_redirect(self, uri: str) -> bool:
        """Registered exactly, or ``http`` on a loopback host (any port and path)."""
        if uri in self.redirect_uris:
            return True
        try:
            parts = urlsplit(uri)
            host = parts.hostname
            parts.port  # noqa: B018 (raises ValueError for a malformed port)
        except ValueError:
            return False
        return parts.scheme == "http" and host in LOOPBACK_HOSTS and not parts.fragment

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "redirect_uris": list(self.redirect_uris),
        }


@dataclass
class Grant:
    """An authorization code or a refresh token: who signed in, to which app, for what."""

    client_id: str
    tenant_id: str
    user_id: str
    scopes: tuple[str, ...]
    expires: float
    redirect_uri: str = ""
    nonce: str | None = None
    code_challenge: str | None = None
    code_challenge_method: str = "plain"
    auth_time: int = 0


def _write_private(path: Path, data: dict[str, Any]) -> None:
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
    temporary.replace(path)


class Identity:
    """Apps, the people's password, consent per tenant and the outstanding grants."""

    def __init__(
        self,
        skolsynk: AppRegistration,
        *,
        portal: App,
        people_password: str,
        consent_by_default: bool = True,
        redirect_uris: tuple[str, ...] = (),
    ) -> None:
        self.apps = {
            SKOLSYNK_APP: App(SKOLSYNK_APP, skolsynk.client_id, skolsynk.client_secret),
            PORTAL_APP: portal,
        }
        for app in self.apps.values():
            for uri in redirect_uris:
                self.register_redirect(app.name, uri)
        self.people_password = people_password
        self.consent_by_default = consent_by_default
        #: tenant id -> client ids an administrator consented to for the whole organisation
        self.consents: dict[str, set[str]] = {}
        #: tenant id -> directory role template id -> member user ids
        self.roles: dict[str, dict[str, list[str]]] = {}
        #: tenant id -> the UPN of its Global Administrator (``sandbox.json``)
        self.administrators: dict[str, str] = {}
        self.codes: dict[str, Grant] = {}
        self.refresh_tokens: dict[str, Grant] = {}
        self.used_flows: dict[str, float] = {}
        self._lock = threading.Lock()

    @classmethod
    def load(
        cls,
        data_dir: Path,
        skolsynk: AppRegistration,
        *,
        consent_by_default: bool = True,
        redirect_uris: tuple[str, ...] = (),
    ) -> Identity:
        """The identity of ``data_dir``: the portal app and password made on first start."""
        path = data_dir / IDENTITY_FILE
        if path.is_file():
            saved = json.loads(path.read_text())
        else:
            saved = {
                "portal": {
                    "client_id": str(uuid.uuid4()),
                    "client_secret": secrets.token_urlsafe(30),
                },
                "people_password": "Sk0l-" + secrets.token_urlsafe(9),
            }
            _write_private(path, saved)
        portal = App(PORTAL_APP, saved["portal"]["client_id"], saved["portal"]["client_secret"])
        return cls(
            skolsynk,
            portal=portal,
            people_password=saved["people_password"],
            consent_by_default=consent_by_default,
            redirect_uris=redirect_uris,
        )

    # --- apps ----------------------------------------------------------------------------------

    def app_by_client_id(self, client_id: str) -> App | None:
        return next((a for a in self.apps.values() if a.client_id == client_id), None)

    def register_redirect(self, name: str, uri: str) -> App:
        """Register ``uri`` for app ``name``; ``ValueError`` with a sentence when it won't do."""
        app = self.apps.get(name)
        if app is None:
            raise ValueError(f"no app '{name}': the apps are {', '.join(APP_NAMES)}")
        try:
            parts = urlsplit(uri)
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("https", "http") or not parts.netloc:
            raise ValueError(f"'{uri}' is not an absolute http(s) URI")
        if parts.fragment:
            raise ValueError(f"'{uri}' has a fragment; redirect URIs cannot")
        if uri not in app.redirect_uris:
            app.redirect_uris.append(uri)
        return app

    # --- consent -------------------------------------------------------------------------------

    def start_tenant(self, tenant_id: str, *, consent: bool | None = None) -> None:
        """A new tenant: Skolsynk's app consented unless the tenant starts without consent."""
        granted = self.consent_by_default if consent is None else consent
        with self._lock:
            self.consents[tenant_id] = {self.apps[SKOLSYNK_APP].client_id} if granted else set()

    def consented(self, tenant_id: str, client_id: str) -> bool:
        return client_id in self.consents.get(tenant_id, set())

    def grant_consent(self, tenant_id: str, client_id: str) -> None:
        with self._lock:
            self.consents.setdefault(tenant_id, set()).add(client_id)

    def revoke_consent(self, tenant_id: str, client_id: str) -> None:
        with self._lock:
            self.consents.setdefault(tenant_id, set()).discard(client_id)
            for table in (self.codes, self.refresh_tokens):
                for key in [k for k, g in table.items() if g.tenant_id == tenant_id]:
                    if table[key].client_id == client_id:
                        del table[key]

    # --- grants --------------------------------------------------------------------------------

    def new_code(self, grant: Grant) -> str:
        code = "1.A" + secrets.token_urlsafe(48)
        with self._lock:
            self._prune(self.codes)
            self.codes[code] = grant
        return code

    def take_code(self, code: str) -> tuple[Grant | None, bool]:
        """The code's grant (removed: a code works once) and whether it was used before."""
        with self._lock:
            grant = self.codes.pop(code, None)
            if grant is not None:
                self.used_flows["code:" + code] = grant.expires
                return grant, False
            return None, ("code:" + code) in self.used_flows

    def new_refresh_token(self, grant: Grant) -> str:
        token = "1.A" + secrets.token_urlsafe(64)
        with self._lock:
            self._prune(self.refresh_tokens)
            self.refresh_tokens[token] = grant
        return token

    def refresh_grant(self, token: str) -> Grant | None:
        with self._lock:
            return self.refresh_tokens.get(token)

    def use_flow(self, flow_id: str, expires: float) -> bool:
        """Mark a sign-in form used; ``False`` when it was used already (a replayed post)."""
        with self._lock:
            if flow_id in self.used_flows:
                return False
            if len(self.used_flows) >= GRANTS_KEPT:
                now = time.time()
                for key in [k for k, exp in self.used_flows.items() if exp < now]:
                    del self.used_flows[key]
            self.used_flows[flow_id] = expires
            return True

    def _prune(self, table: dict[str, Grant]) -> None:
        if len(table) >= GRANTS_KEPT:
            now = time.time()
            for key in [k for k, g in table.items() if g.expires < now]:
                del table[key]
