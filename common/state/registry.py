"""The tenant registry in Redis: which schools Skolsynk serves and where their portal is.

A tenant has a name, an environment (``test`` or ``production``; new tenants start on
``test``), a portal SCIM base URL and bearer token per environment (the token encrypted with
``SKOLSYNK_SECRET_KEY``), a scope, thresholds and an enabled flag.

Failure policy: an unknown tenant raises ``UnknownTenant``; bad settings raise ``ConfigError``
naming every problem; Redis failures raise ``QueueUnavailable`` (translated in ``redis_errors``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import redis
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from common.config import Secret
from common.errors import ConfigError, NeedsAttention, UnknownTenant
from common.model import Scope, Thresholds
from common.state.store import KEY_PREFIX, redis_errors

TENANTS_KEY = KEY_PREFIX + "tenants"
ENVIRONMENTS = ("test", "production")
Environment = Literal["test", "production"]


@dataclass(frozen=True)
class PortalEnvironment:
    """Where one portal environment of a tenant lives."""

    url: str
    token: Secret
    #: where attributes go on this portal when not the default (``role=userType,grade=off``)
    mapping: str = ""


@dataclass(frozen=True)
class Tenant:
    """One school organisation's Microsoft 365 tenant and its portal."""

    id: str
    name: str
    environment: Environment = "test"
    portals: Mapping[str, PortalEnvironment] = field(default_factory=dict)
    scope: Scope = field(default_factory=Scope)
    thresholds: Thresholds = field(default_factory=Thresholds)
    enabled: bool = True
    created_at: str = ""

    def portal(self) -> PortalEnvironment:
        """The portal of the tenant's current environment."""
        try:
            return self.portals[self.environment]
        except KeyError:
            raise NeedsAttention(
                f"Tenant {self.name} is set to the {self.environment} environment, "
                f"but no {self.environment} portal is configured.",
                hint=(
                    f"Run `skolsynk tenant set {self.id} --{self.environment}-portal URL "
                    f"--{self.environment}-token TOKEN`."
                ),
            ) from None


def _fernet(secret_key: Secret) -> Fernet:
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"skolsynk portal tokens"
    ).derive(secret_key.reveal().encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def check_portal_url(url: str, problems: list[str], what: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        problems.append(f"{what} must be an http(s) URL (the SCIM base URL), not {url!r}")


class TenantRegistry:
    """Tenants stored in Redis, one JSON document per tenant."""

    def __init__(self, client: redis.Redis, secret_key: Secret) -> None:
        self.redis: Any = client
        self._fernet = _fernet(secret_key)

    # --- reading ---------------------------------------------------------------------------

    def get(self, tenant: str) -> Tenant:
        """The tenant with this id, or else the one with this name (case-insensitive)."""
        with redis_errors():
            raw = self.redis.get(self._key(tenant))
        if raw is not None:
            return self._decode(raw)
        for candidate in self.all():
            if candidate.name.casefold() == tenant.casefold():
                return candidate
        raise UnknownTenant(f"No tenant {tenant!r} is registered.")

    def all(self) -> list[Tenant]:
        """Every tenant, sorted by name."""
        with redis_errors():
            ids = sorted(m.decode() for m in self.redis.smembers(TENANTS_KEY))
            raws = self.redis.mget([self._key(i) for i in ids]) if ids else []
        tenants = [self._decode(raw) for raw in raws if raw is not None]
        return sorted(tenants, key=lambda t: t.name.casefold())

    # --- writing ---------------------------------------------------------------------------

    def add(self, tenant: Tenant) -> Tenant:
        """Register a new tenant; refuses an id or name that is taken."""
        problems = self._problems(tenant)
        if problems:
            raise ConfigError(problems)
        if any(t.name.casefold() == tenant.name.casefold() for t in self.all()):
            raise NeedsAttention(f"A tenant named {tenant.name!r} is already registered.")
        stored = replace(tenant, created_at=tenant.created_at or _now())
        with redis_errors():
            if not self.redis.set(self._key(tenant.id), self._encode(stored), nx=True):
                raise NeedsAttention(
                    f"Tenant {tenant.id} is already registered.",
                    hint="Change it with `skolsynk tenant set`.",
                )
            self.redis.sadd(TENANTS_KEY, tenant.id)
        return stored

    def save(self, tenant: Tenant) -> Tenant:
        """Store changed settings of a registered tenant."""
        self.get(tenant.id)
        problems = self._problems(tenant)
        if problems:
            raise ConfigError(problems)
        with redis_errors():
            self.redis.set(self._key(tenant.id), self._encode(tenant))
        return tenant

    def remove(self, tenant_id: str) -> Tenant:
        """Forget a tenant and its run state (its audit log is kept until it ages out)."""
        tenant = self.get(tenant_id)
        with redis_errors():
            pipe = self.redis.pipeline()
            pipe.delete(self._key(tenant.id))
            pipe.srem(TENANTS_KEY, tenant.id)
            for suffix in ("last-good", "held", "removals", "managed-count"):
                pipe.delete(f"{KEY_PREFIX}{suffix}:{tenant.id}")
            for kind in ("reconcile", "live"):
                pipe.delete(f"{KEY_PREFIX}last-run:{tenant.id}:{kind}")
            pipe.execute()
        return tenant

    # --- encoding ----------------------------------------------------------------------------

    @staticmethod
    def _key(tenant_id: str) -> str:
        return f"{KEY_PREFIX}tenant:{tenant_id}"

    @staticmethod
    def _problems(tenant: Tenant) -> list[str]:
        problems: list[str] = []
        if not tenant.id.strip():
            problems.append("the tenant id is empty")
        if not tenant.name.strip():
            problems.append("the tenant name is empty")
        if tenant.environment not in ENVIRONMENTS:
            problems.append("the environment must be test or production")
        for env, portal in tenant.portals.items():
            check_portal_url(portal.url, problems, f"the {env} portal")
            if not portal.token.reveal():
                problems.append(f"the {env} portal token is empty")
        # a school connected from the admin app waits, disabled, for its first portal
        if tenant.enabled and tenant.environment not in tenant.portals:
            problems.append(f"no {tenant.environment} portal is set for the current environment")
        t = tenant.thresholds
        if t.max_removals < 0 or not 0 <= t.max_removal_share <= 1:
            problems.append("thresholds must be a non-negative count and a share from 0 to 1")
        return problems

    def _encode(self, tenant: Tenant) -> str:
        return json.dumps(
            {
                "id": tenant.id,
                "name": tenant.name,
                "environment": tenant.environment,
                "portals": {
                    env: {
                        "url": p.url,
                        "token": self._fernet.encrypt(p.token.reveal().encode()).decode(),
                        **({"mapping": p.mapping} if p.mapping else {}),
                    }
                    for env, p in tenant.portals.items()
                },
                "scope": {
                    "school_ids": sorted(tenant.scope.school_ids),
                    "class_pattern": tenant.scope.class_pattern,
                    "include": sorted(tenant.scope.include),
                    "exclude": sorted(tenant.scope.exclude),
                },
                "thresholds": {
                    "max_removals": tenant.thresholds.max_removals,
                    "max_removal_share": tenant.thresholds.max_removal_share,
                    "max_shrink_share": tenant.thresholds.max_shrink_share,
                },
                "enabled": tenant.enabled,
                "created_at": tenant.created_at,
            }
        )

    def _decode(self, raw: bytes | str) -> Tenant:
        data: dict[str, Any] = json.loads(raw)
        portals = {}
        for env, p in data.get("portals", {}).items():
            try:
                token = self._fernet.decrypt(p["token"].encode()).decode()
            except InvalidToken:
                raise NeedsAttention(
                    f"The portal token of tenant {data['name']} cannot be decrypted.",
                    hint="SKOLSYNK_SECRET_KEY changed; set the token again with "
                    f"`skolsynk tenant set {data['id']} --{env}-token TOKEN`.",
                ) from None
            portals[env] = PortalEnvironment(
                url=p["url"], token=Secret(token), mapping=str(p.get("mapping") or "")
            )
        scope = data.get("scope", {})
        thresholds = data.get("thresholds", {})
        return Tenant(
            id=data["id"],
            name=data["name"],
            environment=data.get("environment", "test"),
            portals=portals,
            scope=Scope(
                school_ids=frozenset(scope.get("school_ids", ())),
                class_pattern=scope.get("class_pattern"),
                include=frozenset(scope.get("include", ())),
                exclude=frozenset(scope.get("exclude", ())),
            ),
            thresholds=Thresholds(**thresholds),
            enabled=bool(data.get("enabled", True)),
            created_at=data.get("created_at", ""),
        )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
