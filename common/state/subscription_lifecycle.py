"""Keeping Graph change-notification subscriptions alive: create, renew, recreate, delete.

Each tenant has one subscription on ``/users`` and one on ``/groups`` (DESIGN §4.9), with
``changeType`` ``updated,deleted`` (§4.1) and a lifetime just under Graph's 41,760-minute limit
(§4.2); the records live in ``common.state.subscriptions``.

Failure policy: Redis failures raise ``QueueUnavailable``; Graph failures are the Graph client's
errors and propagate, except ``NotFound`` on renewal, which means Graph dropped the
subscription: it is created again and a reconcile is queued to cover the changes missed in
between.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

from common.errors import NotFound
from common.state.dispatch import Dispatcher
from common.state.subscriptions import (
    GROUPS_RESOURCE,
    USERS_RESOURCE,
    StoredSubscription,
    SubscriptionStore,
    parse_graph_datetime,
    utc_now,
)

log = logging.getLogger(__name__)

RESOURCES: Final = (USERS_RESOURCE, GROUPS_RESOURCE)
CHANGE_TYPE: Final = "updated,deleted"
NOTIFICATION_PATH: Final = "/graph/notifications"
LIFECYCLE_PATH: Final = "/graph/lifecycle"

#: Graph's limit for user and group subscriptions
MAX_SUBSCRIPTION_LIFETIME: Final = timedelta(minutes=41_760)
#: asked-for expiry stays this far under the limit (clock skew, request time)
EXPIRY_MARGIN: Final = timedelta(hours=1)
RENEW_BEFORE_EXPIRY: Final = timedelta(days=3)


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
    moment = utc_now(now)
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
    moment = utc_now(now)
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
