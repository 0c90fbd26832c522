"""The tenant registry in Redis: which schools Skolsynk serves and where their portal is.

A tenant has a name, an environment (``test`` or ``production``; new tenants start on
``test``), a portal SCIM base URL and bearer token per environment (the token encrypted with
``SKOLSYNK_SECRET_KEY``), a scope, thresholds and an enabled flag.

Key rotation: tokens written with a key of ``SKOLSYNK_SECRET_KEY_PREVIOUS`` still decrypt;
every write uses the current key, and ``rekey`` re-encrypts every stored token with it. A token
that no key decrypts does not make the tenant unreadable: only ``Tenant.portal()`` (the commands
that send the token) fails, and setting the token again repairs it.

A removed tenant leaves a tombstone (id, name, when) for as long as its audit log is kept, so
its audit log can still be read by id or name.

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
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from common.config import Secret, key_ring
from common.errors import ConfigError, NeedsAttention, UnknownTenant
from common.model import Scope, Thresholds
from common.state.audit import AUDIT_RETENTION, audit_key
from common.state.store import KEY_PREFIX, redis_errors

TENANTS_KEY = KEY_PREFIX + "tenants"
REMOVED_TENANTS_KEY = KEY_PREFIX + "removed-tenants"
ENVIRONMENTS = ("test", "production")
Environment = Literal["test", "production"]


@dataclass(frozen=True)
class PortalEnvironment:
    """Where one portal environment of a tenant lives."""

    url: str
    token: Secret
    #: where attributes go on this portal when not the default (``role=userType,grade=off``)
    mapping: str = ""
    #: the stored ciphertext, when no key at hand decrypts it (``token`` is then empty)
    undecryptable: str = ""


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
            portal = self.portals[self.environment]
        except KeyError:
            raise NeedsAttention(
                f"Tenant {self.name} is set to the {self.environment} environment, "
                f"but no {self.environment} portal is configured.",
                hint=(
                    f"Run `skolsynk tenant set {self.id} --{self.environment}-portal URL "
                    f"--{self.environment}-token-file PATH`."
                ),
            ) from None
        if portal.undecryptable:
            raise NeedsAttention(
                f"The {self.environment} portal token of tenant {self.name} cannot be decrypted "
                "with SKOLSYNK_SECRET_KEY or any key in SKOLSYNK_SECRET_KEY_PREVIOUS.",
                hint=(
                    "Put the key it was written with in SKOLSYNK_SECRET_KEY_PREVIOUS, or set the "
                    f"token again: `skolsynk tenant set {self.id} "
                    f"--{self.environment}-token-file PATH`."
                ),
            )
        return portal


@dataclass(frozen=True)
class RemovedTenant:
    """What is left of a removed tenant: enough to find and read its audit log."""

    id: str
    name: str
    removed_at: str


def _fernet(secret_key: Secret) -> MultiFernet:
    """Encrypts with the current key; decrypts with it or any previous one."""
    return MultiFernet(
        [
            Fernet(
                base64.urlsafe_b64encode(
                    HKDF(
                        algorithm=hashes.SHA256(),
                        length=32,
                        salt=None,
                        info=b"skolsynk portal tokens",
                    ).derive(key.reveal().encode())
                )
            )
            for key in key_ring(secret_key)
        ]
    )


def _basic_url_problem(url: str, what: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return f"{what} must be an http(s) URL (the SCIM base URL), not {url!r}"
    return None


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

    def removed(self, tenant: str) -> RemovedTenant | None:
        """The tombstone of a tenant removed within the audit log's retention, by id or name."""
        with redis_errors():
            raws = self.redis.hgetall(REMOVED_TENANTS_KEY)
        cutoff = datetime.now(UTC).timestamp() - AUDIT_RETENTION.total_seconds()
        for raw in raws.values():
            data = json.loads(raw)
            gone = RemovedTenant(data["id"], data["name"], data["removed_at"])
            if datetime.fromisoformat(gone.removed_at).timestamp() < cutoff:
                continue
            if tenant.casefold() in (gone.id.casefold(), gone.name.casefold()):
                return gone
        return None

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
        self.refuse_registered(tenant.id, tenant.name)
        problems = self._problems(tenant)
        if problems:
            raise ConfigError(problems)
        stored = replace(tenant, created_at=tenant.created_at or _now())
        with redis_errors():
            if not self.redis.set(self._key(tenant.id), self._encode(stored), nx=True):
                self.refuse_registered(tenant.id, tenant.name)
            self.redis.sadd(TENANTS_KEY, tenant.id)
            # registered again: its audit log is in use again (a removal set it to age out)
            self.redis.hdel(REMOVED_TENANTS_KEY, tenant.id)
            self.redis.persist(audit_key(tenant.id))
        return stored

    def refuse_registered(self, tenant_id: str, name: str | None = None) -> None:
        """Raise ``NeedsAttention`` when this id (or name) is already registered."""
        with redis_errors():
            raw = self.redis.get(self._key(tenant_id))
        if raw is not None:
            known = json.loads(raw)
            raise NeedsAttention(
                f"Tenant {tenant_id} is already registered (as {known['name']}).",
                hint=f"Change its settings with `skolsynk tenant set {tenant_id} ...`.",
            )
        if name is not None:
            for candidate in self.all():
                if candidate.name.casefold() == name.casefold():
                    raise NeedsAttention(
                        f"A tenant named {name!r} is already registered ({candidate.id}).",
                        hint="Choose another --name.",
                    )

    def save(self, tenant: Tenant) -> Tenant:
        """Store changed settings of a registered tenant."""
        self.get(tenant.id)
        problems = self._problems(tenant)
        if problems:
            raise ConfigError(problems)
        with redis_errors():
            self.redis.set(self._key(tenant.id), self._encode(tenant))
        return tenant

    def rekey(self) -> tuple[int, list[str]]:
        """Encrypt every stored token with the current key: how many were re-encrypted, and
        the names of tenants with a token that no key at hand decrypts (left as they are)."""
        count = 0
        stuck: list[str] = []
        with redis_errors():
            ids = sorted(m.decode() for m in self.redis.smembers(TENANTS_KEY))
        for tenant_id in ids:
            with redis_errors():
                raw = self.redis.get(self._key(tenant_id))
            if raw is None:
                continue
            data = json.loads(raw)
            for portal in data.get("portals", {}).values():
                try:
                    portal["token"] = self._fernet.rotate(portal["token"].encode()).decode()
                    count += 1
                except InvalidToken:
                    if data["name"] not in stuck:
                        stuck.append(data["name"])
            with redis_errors():
                self.redis.set(self._key(tenant_id), json.dumps(data))
        return count, stuck

    def remove(self, tenant_id: str) -> Tenant:
        """Forget a tenant and its run state; its audit log is kept until it ages out, and
        ``removed`` still finds its name."""
        tenant = self.get(tenant_id)
        with redis_errors():
            pipe = self.redis.pipeline()
            pipe.delete(self._key(tenant.id))
            pipe.srem(TENANTS_KEY, tenant.id)
            pipe.hset(
                REMOVED_TENANTS_KEY,
                tenant.id,
                json.dumps({"id": tenant.id, "name": tenant.name, "removed_at": _now()}),
            )
            # nothing writes to it any more, so nothing trims it: it goes with its newest entry
            pipe.expire(audit_key(tenant.id), int(AUDIT_RETENTION.total_seconds()))
            for suffix in ("last-good", "held", "removals", "managed-count"):
                pipe.delete(f"{KEY_PREFIX}{suffix}:{tenant.id}")
            for kind in ("reconcile", "live"):
                pipe.delete(f"{KEY_PREFIX}last-run:{tenant.id}:{kind}")
                for env in ENVIRONMENTS:
                    pipe.delete(f"{KEY_PREFIX}last-run:{tenant.id}:{kind}:{env}")
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
            if problem := _basic_url_problem(portal.url, f"the {env} portal"):
                problems.append(problem)
            if not portal.token.reveal() and not portal.undecryptable:
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
                        "token": p.undecryptable
                        or self._fernet.encrypt(p.token.reveal().encode()).decode(),
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
                portals[env] = PortalEnvironment(
                    p["url"],
                    Secret(""),
                    mapping=str(p.get("mapping") or ""),
                    undecryptable=p["token"],
                )
                continue
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
