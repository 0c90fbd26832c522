"""The sandbox's state: settings, trust, tenants, knobs, counters and the notifier.

One ``Registry`` lives per sandbox process. Tenants are created at start (command line) or
through the admin API, loaded from SDS CSV folders and/or generated, then wired to the
notifier so that every change reaches the matching subscriptions.

Failure policy: a tenant that cannot be built (unreadable CSV folder, bad format, a rejected
row under ``strict``) raises ``ValueError`` with a sentence and is not registered.
"""

from __future__ import annotations

import random
import re
import threading
import unicodedata
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.graph import odata, subscriptions
from sandbox.graph.ca import Trust
from sandbox.graph.identity import Identity
from sandbox.graph.knobs import Counters, Knobs
from sandbox.graph.notifications import Notifier
from sandbox.graph.sds_csv import ImportReport
from sandbox.graph.store import Tenant

DEFAULT_DELTA_TOKEN_MAX_AGE_SECONDS = 7 * 24 * 3600
DEFAULT_TOKEN_LIFETIME_SECONDS = 3600
LOAD_FORMATS = ("sds-classic", "sds-uk", "sds-v2", "sds-v2.1")


@dataclass(frozen=True)
class Settings:
    """How this sandbox answers; the URLs are what clients use to reach it."""

    authority: str  # e.g. https://127.0.0.1:PORT
    graph_url: str  # authority + /v1.0
    token_lifetime_seconds: int = DEFAULT_TOKEN_LIFETIME_SECONDS
    delta_token_max_age_seconds: float = DEFAULT_DELTA_TOKEN_MAX_AGE_SECONDS


@dataclass(frozen=True)
class Load:
    """One SDS CSV folder to load into a tenant."""

    format: str
    path: Path

    @classmethod
    def parse(cls, text: str) -> Load:
        fmt, sep, path = text.partition(":")
        if not sep or fmt not in LOAD_FORMATS or not path:
            raise ValueError(
                f"'{text}' is not FORMAT:PATH with FORMAT one of {', '.join(LOAD_FORMATS)}"
            )
        return cls(fmt, Path(path))


def slug(text: str) -> str:
    """ASCII letters and digits of ``text``, lower case (å, ä, ö become a, a, o)."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "", folded.lower()) or "tenant"


class Registry:
    """Everything one sandbox process holds."""

    def __init__(
        self,
        trust: Trust,
        settings: Settings,
        *,
        notifier: Notifier | None = None,
        notification_retry_seconds: float = 4 * 3600.0,
        notification_verify: bool | str = True,
        identity: Identity | None = None,
    ) -> None:
        self.trust = trust
        #: apps, people's password, consent, roles and sign-in grants (``identity``)
        self.identity = identity or Identity.load(trust.ca_path.parent, trust.app)
        self.settings = settings
        self.knobs = Knobs()
        self.counters = Counters()
        self.notifier = notifier or Notifier(
            self.counters,
            verify=notification_verify,
            retry_for_seconds=notification_retry_seconds,
        )
        self.tenants: dict[str, Tenant] = {}
        #: tenant id -> the import report of each SDS folder loaded into it
        self.import_reports: dict[str, list[ImportReport]] = {}
        #: access tokens already verified, with their claims (see ``auth.tenant_for_token``)
        self.verified_tokens: dict[str, dict[str, Any]] = {}
        self._reserved_domains: set[str] = set()
        self._lock = threading.Lock()

    # --- state tokens --------------------------------------------------------------------------

    def sign(self, payload: dict[str, Any]) -> str:
        return odata.sign_state(self.trust.app.state_key, payload)

    def read(self, token: str) -> dict[str, Any] | None:
        return odata.read_state(self.trust.app.state_key, token)

    # --- tenants -------------------------------------------------------------------------------

    def tenant_by_key(self, key: str) -> Tenant | None:
        """A tenant by id or by one of its domains."""
        tenant = self.tenants.get(key)
        if tenant is not None:
            return tenant
        lowered = key.lower()
        for candidate in list(self.tenants.values()):
            if any(d.lower() == lowered for d in candidate.domains):
                return candidate
        return None

    def _free_domain(self, name: str) -> str:
        base = slug(name)
        taken = {d.lower() for t in self.tenants.values() for d in t.domains}
        taken |= self._reserved_domains
        candidate, number = f"{base}.onmicrosoft.com", 1
        while candidate in taken:
            number += 1
            candidate = f"{base}{number}.onmicrosoft.com"
        return candidate

    def create_tenant(
        self,
        *,
        name: str | None = None,
        loads: tuple[Load, ...] = (),
        generate: int | None = None,
        seed: int | None = None,
        tenant_id: str | None = None,
        strict: bool = False,
        consent: bool | None = None,
    ) -> Tenant:
        """Build a tenant (loads first, then the generated municipality) and register it; each
        load's report is in ``import_reports``. With ``strict`` a rejected CSV row is an error;
        ``consent`` False starts it without admin consent for Skolsynk's app."""
        from sandbox.graph import generator, roles, sds_load

        for load in loads:
            if not load.path.is_dir():
                raise ValueError(f"{load.format} folder {load.path} does not exist")
        tid = tenant_id or str(uuid.uuid4())
        rng = random.Random(f"{seed}:{tid}")
        effective_seed = seed if seed is not None else rng.randrange(1 << 30)
        municipality = generator.municipality_name(effective_seed)
        display = name or (municipality if generate else f"Sandbox tenant {len(self.tenants) + 1}")
        with self._lock:
            domain = self._free_domain(
                municipality.removesuffix(" kommun") if generate and not name else display
            )
            self._reserved_domains.add(domain)
        try:
            tenant = Tenant(tid, display, domain, seed=rng.getrandbits(64))
            reports = [
                sds_load.load(tenant, load.format, load.path, strict=strict) for load in loads
            ]
            if generate:
                generator.generate(tenant, generate, seed=effective_seed)
            roles.ensure_people(self.identity, tenant)
            self.identity.start_tenant(tid, consent=consent)
            tenant.on_change = self._on_change
            with self._lock:
                self.tenants[tid] = tenant
                self.import_reports[tid] = reports
        finally:
            with self._lock:
                self._reserved_domains.discard(domain)
        return tenant

    def _on_change(self, tenant: Tenant, kind: str, obj_id: str, change: str) -> None:
        subscriptions.on_change(self, tenant, kind, obj_id, change)
