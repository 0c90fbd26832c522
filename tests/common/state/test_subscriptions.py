"""Subscription records, verification, creation and renewal (the sandbox-backed end-to-end
tests are in ``tests/listener/test_with_graph_sandbox.py``)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from rq import Queue
from rq.serializers import JSONSerializer

from common.config import Secret
from common.errors import NotFound
from common.state.dispatch import RECONCILE_QUEUE, Dispatcher
from common.state.subscription_lifecycle import (
    EXPIRY_MARGIN,
    MAX_SUBSCRIPTION_LIFETIME,
    RENEW_BEFORE_EXPIRY,
    ensure_subscriptions,
    renew_subscriptions,
)
from common.state.subscriptions import SubscriptionStore, parse_graph_datetime

TENANT = "6c1f8a3e-2b7d-4e59-9a10-3f5c2d8e7b41"
OTHER_TENANT = "0a9b8c7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d"
PUBLIC_URL = "https://skolsynk.example.test"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class GraphSubscriptions:
    """Graph's ``/subscriptions`` for one tenant, as a fake with Graph's answers and 404s."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.client_states: dict[str, str] = {}

    def create_subscription(  # noqa: PLR0917 - the GraphClient signature
        self,
        resource: str,
        change_type: str,
        notification_url: str,
        lifecycle_url: str,
        expiration: datetime,
        client_state: str,
    ) -> dict[str, Any]:
        subscription_id = str(uuid.uuid4())
        self.items[subscription_id] = {
            "id": subscription_id,
            "resource": resource,
            "changeType": change_type,
            "notificationUrl": notification_url,
            "lifecycleNotificationUrl": lifecycle_url,
            "expirationDateTime": expiration.strftime("%Y-%m-%dT%H:%M:%S.0000000Z"),
        }
        self.client_states[subscription_id] = client_state
        return dict(self.items[subscription_id])

    def renew_subscription(self, subscription_id: str, expiration: datetime) -> dict[str, Any]:
        if subscription_id not in self.items:
            raise NotFound("no such subscription")
        self.items[subscription_id]["expirationDateTime"] = expiration.strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        return dict(self.items[subscription_id])

    def delete_subscription(self, subscription_id: str) -> None:
        if self.items.pop(subscription_id, None) is None:
            raise NotFound("no such subscription")

    def list_subscriptions(self) -> list[dict[str, Any]]:
        return [dict(item) for item in self.items.values()]


@pytest.fixture
def store(redis_client: redis.Redis) -> SubscriptionStore:
    return SubscriptionStore(redis_client, Secret("subscription-tests-secret-key-42"))


@pytest.fixture
def graph() -> GraphSubscriptions:
    return GraphSubscriptions()


def add(store: SubscriptionStore, *, client_state: str = "state-1", expires: datetime = NOW) -> str:
    subscription_id = str(uuid.uuid4())
    store.add(
        subscription_id,
        tenant_id=TENANT,
        resource="/users",
        expires_at=expires,
        notification_url=PUBLIC_URL + "/graph/notifications",
        lifecycle_url=PUBLIC_URL + "/graph/lifecycle",
        client_state=client_state,
    )
    return subscription_id


def reconciles(client: redis.Redis) -> list[tuple[str, list[str]]]:
    queue = Queue(RECONCILE_QUEUE, connection=client, serializer=JSONSerializer)
    return [(job.func_name, list(job.args)) for job in queue.get_jobs()]


def test_verify_accepts_the_right_subscription_client_state_and_tenant(
    store: SubscriptionStore,
) -> None:
    subscription_id = add(store)
    verdict = store.verify(subscription_id, "state-1", TENANT)
    assert verdict.ok
    assert verdict.subscription is not None
    assert verdict.subscription.tenant_id == TENANT


@pytest.mark.parametrize(
    ("client_state", "tenant", "reason"),
    [
        ("state-2", TENANT, "wrong_client_state"),
        ("", TENANT, "wrong_client_state"),
        (None, TENANT, "wrong_client_state"),
        ("state-1", OTHER_TENANT, "wrong_tenant"),
    ],
)
def test_verify_names_what_is_wrong(
    store: SubscriptionStore, client_state: str | None, tenant: str, reason: str
) -> None:
    subscription_id = add(store)
    assert store.verify(subscription_id, client_state, tenant).reason == reason


def test_verify_of_an_unknown_subscription_says_so(store: SubscriptionStore) -> None:
    assert store.verify(str(uuid.uuid4()), "state-1", TENANT).reason == "unknown_subscription"


def test_client_state_of_one_subscription_does_not_pass_for_another(
    store: SubscriptionStore,
) -> None:
    add(store, client_state="state-of-first")
    second = add(store, client_state="state-of-second")
    assert store.verify(second, "state-of-first", TENANT).reason == "wrong_client_state"


def test_client_state_itself_is_stored_nowhere(
    store: SubscriptionStore, redis_client: redis.Redis
) -> None:
    add(store, client_state="the-secret-client-state")
    for key in redis_client.keys("*"):
        dumped = repr(redis_client.dump(key))
        assert "the-secret-client-state" not in dumped
        if redis_client.type(key) == b"hash":
            assert b"the-secret-client-state" not in b"".join(redis_client.hgetall(key).values())


def test_digest_depends_on_the_secret_key(redis_client: redis.Redis) -> None:
    one = SubscriptionStore(redis_client, Secret("first-secret-key-0123456789"))
    two = SubscriptionStore(redis_client, Secret("second-secret-key-012345678"))
    assert one.digest("sub", "state") != two.digest("sub", "state")


def test_graph_datetimes_with_seven_fraction_digits_parse() -> None:
    parsed = parse_graph_datetime("2026-03-29T11:00:00.1234567Z")
    assert parsed == datetime(2026, 3, 29, 11, 0, 0, 123456, tzinfo=UTC)
    assert parse_graph_datetime("2026-03-29T11:00:00+00:00") == datetime(
        2026, 3, 29, 11, tzinfo=UTC
    )


def test_ensure_creates_one_users_and_one_groups_subscription_as_graph_requires(
    graph: GraphSubscriptions, store: SubscriptionStore
) -> None:
    created = ensure_subscriptions(graph, store, TENANT, PUBLIC_URL + "/", now=NOW)
    assert sorted(s.resource for s in created) == ["/groups", "/users"]
    for item in graph.items.values():
        assert item["changeType"] == "updated,deleted"
        assert item["notificationUrl"] == PUBLIC_URL + "/graph/notifications"
        assert item["lifecycleNotificationUrl"] == PUBLIC_URL + "/graph/lifecycle"
        expires = parse_graph_datetime(item["expirationDateTime"])
        assert expires == NOW + MAX_SUBSCRIPTION_LIFETIME - EXPIRY_MARGIN
        assert expires - NOW < timedelta(minutes=41_760)
    for subscription_id, client_state in graph.client_states.items():
        assert len(client_state) >= 40
        assert store.verify(subscription_id, client_state, TENANT).ok
    assert len(set(graph.client_states.values())) == 2


def test_ensure_twice_creates_nothing_the_second_time(
    graph: GraphSubscriptions, store: SubscriptionStore
) -> None:
    ensure_subscriptions(graph, store, TENANT, PUBLIC_URL, now=NOW)
    assert ensure_subscriptions(graph, store, TENANT, PUBLIC_URL, now=NOW) == []
    assert len(graph.items) == 2


def test_ensure_replaces_a_subscription_graph_no_longer_has(
    graph: GraphSubscriptions, store: SubscriptionStore
) -> None:
    first = ensure_subscriptions(graph, store, TENANT, PUBLIC_URL, now=NOW)
    users = next(s for s in first if s.resource == "/users")
    del graph.items[users.id]
    [replacement] = ensure_subscriptions(graph, store, TENANT, PUBLIC_URL, now=NOW)
    assert replacement.resource == "/users"
    assert store.get(users.id) is None
    assert {s.id for s in store.for_tenant(TENANT)} == set(graph.items)


def test_ensure_deletes_a_subscription_to_our_url_whose_client_state_we_lost(
    graph: GraphSubscriptions, store: SubscriptionStore, redis_client: redis.Redis
) -> None:
    ensure_subscriptions(graph, store, TENANT, PUBLIC_URL, now=NOW)
    lost = set(graph.items)
    redis_client.flushdb()  # our records are gone, Graph's subscriptions are not
    ensure_subscriptions(graph, store, TENANT, PUBLIC_URL, now=NOW)
    assert not lost & set(graph.items)
    assert len(graph.items) == 2


def test_renew_renews_only_subscriptions_expiring_within_three_days(
    graph: GraphSubscriptions, store: SubscriptionStore, redis_client: redis.Redis
) -> None:
    ensure_subscriptions(graph, store, TENANT, PUBLIC_URL, now=NOW)
    far_off = NOW + MAX_SUBSCRIPTION_LIFETIME - RENEW_BEFORE_EXPIRY - timedelta(hours=3)
    report = renew_subscriptions(graph, store, TENANT, Dispatcher(redis_client), now=far_off)
    assert report.renewed == ()
    soon = NOW + MAX_SUBSCRIPTION_LIFETIME - RENEW_BEFORE_EXPIRY
    report = renew_subscriptions(graph, store, TENANT, Dispatcher(redis_client), now=soon)
    assert len(report.renewed) == 2
    for record in store.for_tenant(TENANT):
        assert record.expires_at == soon + MAX_SUBSCRIPTION_LIFETIME - EXPIRY_MARGIN
    assert reconciles(redis_client) == []


def test_renew_reauthorizes_a_flagged_subscription_whatever_its_expiry(
    graph: GraphSubscriptions, store: SubscriptionStore, redis_client: redis.Redis
) -> None:
    created = ensure_subscriptions(graph, store, TENANT, PUBLIC_URL, now=NOW)
    store.mark_reauthorization_required(created[0].id)
    report = renew_subscriptions(graph, store, TENANT, Dispatcher(redis_client), now=NOW)
    assert [s.id for s in report.renewed] == [created[0].id]
    assert not any(s.reauthorize for s in store.for_tenant(TENANT))


def test_renew_recreates_a_subscription_graph_lost_and_queues_a_reconcile(
    graph: GraphSubscriptions, store: SubscriptionStore, redis_client: redis.Redis
) -> None:
    created = ensure_subscriptions(graph, store, TENANT, PUBLIC_URL, now=NOW)
    for record in created:
        del graph.items[record.id]
    soon = NOW + MAX_SUBSCRIPTION_LIFETIME - timedelta(days=1)
    report = renew_subscriptions(graph, store, TENANT, Dispatcher(redis_client), now=soon)
    assert sorted(s.resource for s in report.recreated) == ["/groups", "/users"]
    assert report.reconcile_queued
    assert reconciles(redis_client) == [("worker.jobs.full_reconcile", [TENANT])]
    assert {s.id for s in store.for_tenant(TENANT)} == set(graph.items)
    for record in report.recreated:
        assert record.notification_url == PUBLIC_URL + "/graph/notifications"
