"""End to end with the simulated Graph: our subscriptions, its handshake and its notifications,
delivered to the listener under gunicorn, turn into jobs; its lifecycle events into renewals;
a subscription it lost is created again with a reconcile to catch up."""

from __future__ import annotations

import pytest
import redis

from common.config import Secret
from common.dispatch import Dispatcher
from common.subscriptions import SubscriptionStore, ensure_subscriptions, renew_subscriptions
from tests.fixtures.graph import GraphSandbox, SandboxTenant
from tests.fixtures.graph_client import (  # noqa: F401 - fixtures used by name
    GraphClients,
    graph_clients,
    graph_session,
    graph_tokens,
)
from tests.fixtures.processes import ServiceProcess, wait_until
from tests.listener.conftest import SECRET_KEY, queued, renewals

pytestmark = pytest.mark.slow


def test_sandbox_notifications_for_a_new_student_queue_its_sync_job(
    served: tuple[str, ServiceProcess],
    redis_url: str,
    graph_tenant: SandboxTenant,
    graph_clients: GraphClients,  # noqa: F811
) -> None:
    base, _ = served
    client = redis.Redis.from_url(redis_url)
    store = SubscriptionStore(client, Secret(SECRET_KEY))
    graph = graph_clients(graph_tenant.id)

    created = ensure_subscriptions(graph, store, graph_tenant.id, base)
    assert sorted(s.resource for s in created) == ["/groups", "/users"]
    assert ensure_subscriptions(graph, store, graph_tenant.id, base) == []

    student = graph_tenant.graph.create_student("Ebba", "Lind", school_id="skola-1")
    wanted = ("worker.jobs.sync_user", [graph_tenant.id, student["id"]])
    wait_until(lambda: wanted in queued(client), timeout=10, what="the student's sync job")
    assert queued(client).count(wanted) == 1
    client.close()


def test_sandbox_reauthorization_event_queues_a_renewal_that_renews_at_graph(
    served: tuple[str, ServiceProcess],
    redis_url: str,
    graph_sandbox: GraphSandbox,
    graph_tenant: SandboxTenant,
    graph_clients: GraphClients,  # noqa: F811
) -> None:
    base, _ = served
    client = redis.Redis.from_url(redis_url)
    store = SubscriptionStore(client, Secret(SECRET_KEY))
    graph = graph_clients(graph_tenant.id)
    ensure_subscriptions(graph, store, graph_tenant.id, base)

    answer = graph_sandbox.admin("POST", f"/tenants/{graph_tenant.id}/reauthorization-required")
    assert answer.status_code == 202
    wanted = [("worker.jobs.renew_subscriptions", [graph_tenant.id])]
    wait_until(lambda: renewals(client) == wanted, timeout=10, what="the renewal job")
    assert all(s.reauthorize for s in store.for_tenant(graph_tenant.id))

    # what the renewal job does: renew at Graph, clear the flags
    report = renew_subscriptions(graph, store, graph_tenant.id, Dispatcher(client))
    assert len(report.renewed) == 2
    assert not report.recreated
    assert not any(s.reauthorize for s in store.for_tenant(graph_tenant.id))
    client.close()


def test_subscription_gone_at_graph_is_created_again_and_a_reconcile_queued(
    served: tuple[str, ServiceProcess],
    redis_url: str,
    graph_tenant: SandboxTenant,
    graph_clients: GraphClients,  # noqa: F811
) -> None:
    base, _ = served
    client = redis.Redis.from_url(redis_url)
    store = SubscriptionStore(client, Secret(SECRET_KEY))
    graph = graph_clients(graph_tenant.id)
    users, groups = sorted(
        ensure_subscriptions(graph, store, graph_tenant.id, base), key=lambda s: s.resource
    )[::-1]
    graph.delete_subscription(users.id)
    store.mark_reauthorization_required(users.id)

    report = renew_subscriptions(graph, store, graph_tenant.id, Dispatcher(client))
    assert [s.resource for s in report.recreated] == ["/users"]
    assert report.reconcile_queued
    assert queued(client, "reconcile") == [("worker.jobs.full_reconcile", [graph_tenant.id])]
    listed = {s["id"] for s in graph.list_subscriptions()}
    assert {report.recreated[0].id, groups.id} == listed
    client.close()
