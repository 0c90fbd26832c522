"""What we hold for each Graph change-notification subscription, and the listener's check of a
notification against it.

For each subscription we keep, in Redis, the tenant, the resource, the expiry, the URLs Graph
calls, and an HMAC-SHA256 digest of its ``clientState`` under ``SKOLSYNK_SECRET_KEY``; the
clientState itself is sent to Graph once, at creation, and stored nowhere. Creating and renewing
subscriptions is ``common.state.subscription_lifecycle``.

Failure policy: Redis failures raise ``QueueUnavailable`` (``common.state.store.redis_errors``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

import redis

from common.config import Secret
from common.state.store import KEY_PREFIX, redis_errors

log = logging.getLogger(__name__)

USERS_RESOURCE: Final = "/users"
GROUPS_RESOURCE: Final = "/groups"
#: how long the listener trusts a subscription record it read (see ``SubscriptionStore``)
VERIFICATION_CACHE_SECONDS: Final = 5.0
#: two per tenant; a bound on memory whatever arrives
MAX_CACHED_SUBSCRIPTIONS: Final = 10_000

Reason = Literal["ok", "unknown_subscription", "wrong_client_state", "wrong_tenant"]
REJECTION_REASONS: Final[tuple[Reason, ...]] = (
    "unknown_subscription",
    "wrong_client_state",
    "wrong_tenant",
)


@dataclass(frozen=True)
class StoredSubscription:
    """What we know about one of our subscriptions (never its clientState)."""

    id: str
    tenant_id: str
    resource: str
    expires_at: datetime
    notification_url: str
    lifecycle_url: str
    #: Graph sent ``reauthorizationRequired``: renew at the next renewal whatever the expiry
    reauthorize: bool = False


@dataclass(frozen=True)
class Verdict:
    """Whether a notification's subscription, clientState and tenant check out."""

    reason: Reason
    subscription: StoredSubscription | None = None

    @property
    def ok(self) -> bool:
        return self.reason == "ok"


def subscription_key(subscription_id: str) -> str:
    return f"{KEY_PREFIX}subscription:{subscription_id.lower()}"


def tenant_subscriptions_key(tenant_id: str) -> str:
    return f"{KEY_PREFIX}subscriptions:{tenant_id}"


def utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_graph_datetime(raw: str) -> datetime:
    """A Graph ``DateTimeOffset`` (``2026-01-02T03:04:05.1234567Z``) as an aware datetime."""
    text = raw.strip().replace("Z", "+00:00")
    # Graph sends seven fractional digits; Python takes at most six
    if "." in text:
        head, _, rest = text.partition(".")
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits) :]
        text = f"{head}.{digits[:6]}{zone}"
    return utc(datetime.fromisoformat(text))


class SubscriptionStore:
    """Our subscriptions in Redis: a hash per subscription, a set of ids per tenant.

    With ``cache_seconds``, ``verify`` keeps the records it found (never misses) that long in
    the process, saving the listener a round trip per delivery; a subscription removed
    meanwhile is still accepted for those seconds, which at worst queues a harmless sync.
    """

    def __init__(
        self, client: redis.Redis, secret_key: Secret, *, cache_seconds: float = 0.0
    ) -> None:
        # Any: redis-py's stubs type replies as bytes | str, which helps nothing here
        self.redis: Any = client
        self._key = secret_key.reveal().encode()
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, _Known]] = {}

    def digest(self, subscription_id: str, client_state: str) -> str:
        """HMAC-SHA256 of a clientState, bound to its subscription id."""
        message = f"{subscription_id.lower()}\x00{client_state}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def add(
        self,
        subscription_id: str,
        *,
        tenant_id: str,
        resource: str,
        expires_at: datetime,
        notification_url: str,
        lifecycle_url: str,
        client_state: str,
    ) -> StoredSubscription:
        record = StoredSubscription(
            id=subscription_id,
            tenant_id=tenant_id,
            resource=resource,
            expires_at=utc(expires_at),
            notification_url=notification_url,
            lifecycle_url=lifecycle_url,
        )
        fields = {
            "id": record.id,
            "tenant_id": record.tenant_id,
            "resource": record.resource,
            "expires_at": record.expires_at.isoformat(),
            "notification_url": record.notification_url,
            "lifecycle_url": record.lifecycle_url,
            "client_state_digest": self.digest(subscription_id, client_state),
            "reauthorize": "0",
        }
        with redis_errors(), self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(subscription_key(subscription_id), mapping=fields)
            pipe.sadd(tenant_subscriptions_key(tenant_id), subscription_id)
            pipe.execute()
        return record

    def get(self, subscription_id: str) -> StoredSubscription | None:
        with redis_errors():
            raw = self.redis.hgetall(subscription_key(subscription_id))
        return _record(raw)

    def for_tenant(self, tenant_id: str) -> list[StoredSubscription]:
        with redis_errors():
            ids = sorted(
                m.decode() for m in self.redis.smembers(tenant_subscriptions_key(tenant_id))
            )
            with self.redis.pipeline(transaction=False) as pipe:
                for subscription_id in ids:
                    pipe.hgetall(subscription_key(subscription_id))
                raws = pipe.execute()
        return [r for r in (_record(raw) for raw in raws) if r is not None]

    def set_expiry(self, subscription_id: str, expires_at: datetime) -> None:
        """Record a renewal (which also clears a pending reauthorization)."""
        with redis_errors():
            self.redis.hset(
                subscription_key(subscription_id),
                mapping={"expires_at": utc(expires_at).isoformat(), "reauthorize": "0"},
            )

    def mark_reauthorization_required(self, subscription_id: str) -> None:
        with redis_errors():
            if self.redis.exists(subscription_key(subscription_id)):
                self.redis.hset(subscription_key(subscription_id), "reauthorize", "1")

    def remove(self, record: StoredSubscription) -> None:
        with redis_errors(), self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(subscription_key(record.id))
            pipe.srem(tenant_subscriptions_key(record.tenant_id), record.id)
            pipe.execute()

    def verify(self, subscription_id: str, client_state: str | None, tenant_id: str) -> Verdict:
        """Check a notification's subscription id, clientState and tenant against our record."""
        return self.verify_many([(subscription_id, client_state, tenant_id)])[0]

    def verify_many(self, items: Sequence[tuple[str, str | None, str]]) -> list[Verdict]:
        """``verify`` for many (subscription id, clientState, tenant id), in one round trip."""
        known = self._records_by_id({subscription_id.lower() for subscription_id, _, _ in items})
        return [
            self._judge(subscription_id, client_state, tenant_id, known[subscription_id.lower()])
            for subscription_id, client_state, tenant_id in items
        ]

    def _records_by_id(self, ids: set[str]) -> dict[str, _Known]:
        now = time.monotonic()
        known: dict[str, _Known] = {}
        for subscription_id in ids:
            cached = self._cache.get(subscription_id)
            if cached is not None and cached[0] > now:
                known[subscription_id] = cached[1]
        missing = sorted(ids - known.keys())
        if not missing:
            return known
        with redis_errors(), self.redis.pipeline(transaction=False) as pipe:
            for subscription_id in missing:
                pipe.hgetall(subscription_key(subscription_id))
            fetched = {
                subscription_id: _Known.of(raw)
                for subscription_id, raw in zip(missing, pipe.execute(), strict=True)
            }
        known.update(fetched)
        if self.cache_seconds > 0:
            if len(self._cache) > MAX_CACHED_SUBSCRIPTIONS:
                self._cache.clear()
            for subscription_id, found in fetched.items():
                if found.record is not None:
                    self._cache[subscription_id] = (now + self.cache_seconds, found)
        return known

    def _judge(
        self,
        subscription_id: str,
        client_state: str | None,
        tenant_id: str,
        known: _Known,
    ) -> Verdict:
        record = known.record
        if record is None:
            return Verdict("unknown_subscription")
        presented = self.digest(subscription_id, client_state or "")
        # constant time, and a missing clientState compares like a wrong one
        if not hmac.compare_digest(known.client_state_digest, presented) or client_state is None:
            return Verdict("wrong_client_state", record)
        if tenant_id.lower() != record.tenant_id.lower():
            return Verdict("wrong_tenant", record)
        return Verdict("ok", record)


@dataclass(frozen=True)
class _Known:
    """A subscription as read from Redis for verifying (no record: not ours)."""

    record: StoredSubscription | None
    client_state_digest: str

    @classmethod
    def of(cls, raw: dict[bytes, bytes]) -> _Known:
        record = _record(raw)
        digest = raw[b"client_state_digest"].decode() if record is not None else ""
        return cls(record, digest)


def _record(raw: dict[bytes, bytes]) -> StoredSubscription | None:
    if not raw or b"client_state_digest" not in raw:
        return None
    text = {k.decode(): v.decode() for k, v in raw.items()}
    return StoredSubscription(
        id=text["id"],
        tenant_id=text["tenant_id"],
        resource=text["resource"],
        expires_at=datetime.fromisoformat(text["expires_at"]),
        notification_url=text["notification_url"],
        lifecycle_url=text["lifecycle_url"],
        reauthorize=text.get("reauthorize") == "1",
    )
