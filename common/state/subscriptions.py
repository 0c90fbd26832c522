"""Graph change-notification subscriptions: what we hold for each one, and keeping them alive.

Each tenant has one subscription on ``/users`` and one on ``/groups`` (DESIGN §4.9), with
``changeType`` ``updated,deleted`` (§4.1) and a lifetime just under Graph's 41,760-minute limit
(§4.2). For each we keep, in Redis, the tenant, the resource, the expiry, the URLs Graph calls,
and an HMAC-SHA256 digest of its ``clientState`` under ``SKOLSYNK_SECRET_KEY``; the clientState
itself is sent to Graph once, at creation, and stored nowhere.

Failure policy: Redis failures raise ``QueueUnavailable`` (translated in ``common.state.dispatch``);
Graph failures are the Graph client's errors and propagate, except ``NotFound`` on renewal,
which means Graph dropped the subscription: it is created again and a reconcile is queued to
cover the changes missed in between.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, Protocol

import redis

from common.config import Secret
from common.errors import NotFound
from common.state.dispatch import Dispatcher
from common.state.store import KEY_PREFIX, redis_errors

log = logging.getLogger(__name__)

USERS_RESOURCE: Final = "/users"
GROUPS_RESOURCE: Final = "/groups"
RESOURCES: Final = (USERS_RESOURCE, GROUPS_RESOURCE)
CHANGE_TYPE: Final = "updated,deleted"
NOTIFICATION_PATH: Final = "/graph/notifications"
LIFECYCLE_PATH: Final = "/graph/lifecycle"

#: Graph's limit for user and group subscriptions
MAX_SUBSCRIPTION_LIFETIME: Final = timedelta(minutes=41_760)
#: asked-for expiry stays this far under the limit (clock skew, request time)
EXPIRY_MARGIN: Final = timedelta(hours=1)
RENEW_BEFORE_EXPIRY: Final = timedelta(days=3)
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


class SubscriptionApi(Protocol):
    """The four Graph subscription calls (``common.graph.client.GraphClient`` has them)."""

    def create_subscription(  # noqa: PLR0917 - the GraphClient signature, positional there
        self,
        resource: str,
        change_type: str,
        notification_url: str,
        lifecycle_url: str,
        expiration: datetime,
        client_state: str,
    ) -> dict[str, Any]: ...

    def renew_subscription(self, subscription_id: str, expiration: datetime) -> dict[str, Any]: ...

    def delete_subscription(self, subscription_id: str) -> None: ...

    def list_subscriptions(self) -> list[dict[str, Any]]: ...


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


def _utc(value: datetime) -> datetime:
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
    return _utc(datetime.fromisoformat(text))


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
            expires_at=_utc(expires_at),
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
                mapping={"expires_at": _utc(expires_at).isoformat(), "reauthorize": "0"},
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


def _now(now: datetime | None) -> datetime:
    return _utc(now) if now is not None else datetime.now(UTC)


def new_expiration(now: datetime) -> datetime:
    """The expiry to ask Graph for: the longest lifetime, less a margin."""
    return now + MAX_SUBSCRIPTION_LIFETIME - EXPIRY_MARGIN


def _expiry_from(answer: dict[str, Any], asked: datetime) -> datetime:
    raw = answer.get("expirationDateTime")
    return parse_graph_datetime(raw) if isinstance(raw, str) and raw else asked


def _create(
    graph: SubscriptionApi,
    store: SubscriptionStore,
    *,
    tenant_id: str,
    resource: str,
    notification_url: str,
    lifecycle_url: str,
    now: datetime,
) -> StoredSubscription:
    client_state = secrets.token_urlsafe(32)
    expiration = new_expiration(now)
    answer = graph.create_subscription(
        resource=resource,
        change_type=CHANGE_TYPE,
        notification_url=notification_url,
        lifecycle_url=lifecycle_url,
        expiration=expiration,
        client_state=client_state,
    )
    record = store.add(
        str(answer["id"]),
        tenant_id=tenant_id,
        resource=resource,
        expires_at=_expiry_from(answer, expiration),
        notification_url=notification_url,
        lifecycle_url=lifecycle_url,
        client_state=client_state,
    )
    log.info(
        "subscription created",
        extra={"tenant": tenant_id, "subscription": record.id, "resource": resource},
    )
    return record


def ensure_subscriptions(
    graph: SubscriptionApi,
    store: SubscriptionStore,
    tenant_id: str,
    public_url: str,
    *,
    now: datetime | None = None,
) -> list[StoredSubscription]:
    """Make sure the tenant has a live ``/users`` and ``/groups`` subscription; return the ones
    created now.

    A stored subscription that Graph no longer lists, or that has expired, is forgotten and
    replaced. A subscription Graph lists for our notification URL that we hold no record of
    (its clientState is lost, so its notifications could never be verified) is deleted first,
    so the tenant keeps one per resource.
    """
    moment = _now(now)
    base = public_url.rstrip("/")
    notification_url, lifecycle_url = base + NOTIFICATION_PATH, base + LIFECYCLE_PATH
    listed = graph.list_subscriptions()
    listed_ids = {str(s.get("id", "")).lower() for s in listed}
    covered: set[str] = set()
    for record in store.for_tenant(tenant_id):
        if record.id.lower() in listed_ids and record.expires_at > moment:
            covered.add(record.resource)
        else:
            store.remove(record)
    ours = {r.id.lower() for r in store.for_tenant(tenant_id)}
    for item in listed:
        item_id = str(item.get("id", ""))
        if item.get("notificationUrl") == notification_url and item_id.lower() not in ours:
            _delete_quietly(graph, item_id, tenant_id)
    return [
        _create(
            graph,
            store,
            tenant_id=tenant_id,
            resource=resource,
            notification_url=notification_url,
            lifecycle_url=lifecycle_url,
            now=moment,
        )
        for resource in RESOURCES
        if resource not in covered
    ]


def _delete_quietly(graph: SubscriptionApi, subscription_id: str, tenant_id: str) -> None:
    try:
        graph.delete_subscription(subscription_id)
    except NotFound:
        return
    log.info(
        "unverifiable subscription deleted",
        extra={"tenant": tenant_id, "subscription": subscription_id},
    )


@dataclass(frozen=True)
class RenewalReport:
    """What a renewal round did for one tenant."""

    renewed: tuple[StoredSubscription, ...]
    recreated: tuple[StoredSubscription, ...]
    reconcile_queued: bool


def renew_subscriptions(
    graph: SubscriptionApi,
    store: SubscriptionStore,
    tenant_id: str,
    dispatcher: Dispatcher,
    *,
    now: datetime | None = None,
) -> RenewalReport:
    """Renew the tenant's subscriptions that expire within ``RENEW_BEFORE_EXPIRY`` or that Graph
    asked to reauthorize; one Graph no longer lists, or answers 404 for, is created again, and a
    reconcile is queued to cover the changes missed meanwhile.

    Graph's list of subscriptions is read every round (one request), so a subscription removed
    behind our back is noticed at the next round, not only when it would have expired.
    """
    moment = _now(now)
    renewed: list[StoredSubscription] = []
    recreated: list[StoredSubscription] = []
    listed = {str(item.get("id", "")).lower() for item in graph.list_subscriptions()}
    records = store.for_tenant(tenant_id)
    due = {r.id for r in expiring(records, now=moment)}
    for record in records:
        missing = record.id.lower() not in listed
        if not missing and record.id not in due:
            continue
        expiration = new_expiration(moment)
        try:
            if missing:
                raise NotFound(f"subscription {record.id} is no longer listed by Graph")
            answer = graph.renew_subscription(record.id, expiration)
        except NotFound:
            store.remove(record)
            log.warning(
                "subscription gone at Graph; creating it again",
                extra={"tenant": tenant_id, "subscription": record.id},
            )
            recreated.append(
                _create(
                    graph,
                    store,
                    tenant_id=tenant_id,
                    resource=record.resource,
                    notification_url=record.notification_url,
                    lifecycle_url=record.lifecycle_url,
                    now=moment,
                )
            )
            continue
        store.set_expiry(record.id, _expiry_from(answer, expiration))
        renewed.append(record)
        log.info("subscription renewed", extra={"tenant": tenant_id, "subscription": record.id})
    queued = False
    if recreated:
        queued = dispatcher.enqueue_reconcile(
            tenant_id, why="a subscription had expired at Graph; catching up on missed changes"
        )
    return RenewalReport(tuple(renewed), tuple(recreated), queued)


def expiring(records: Iterable[StoredSubscription], *, now: datetime) -> list[StoredSubscription]:
    """The subscriptions a renewal round at ``now`` would renew."""
    return [r for r in records if r.reauthorize or r.expires_at - now <= RENEW_BEFORE_EXPIRY]


def remove_subscriptions(graph: SubscriptionApi, store: SubscriptionStore, tenant_id: str) -> int:
    """Delete every subscription of the tenant, in Graph and here (a school disconnects).

    A subscription Graph no longer knows is forgotten all the same; returns how many were ours.
    """
    records = store.for_tenant(tenant_id)
    for record in records:
        _delete_quietly(graph, record.id, tenant_id)
        store.remove(record)
    return len(records)
