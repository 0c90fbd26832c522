"""End to end with the simulated Graph: our subscriptions, its handshake and its notifications,
delivered to the listener under gunicorn, turn into jobs; its lifecycle events into renewals;
a subscription it lost is created again with a reconcile to catch up."""

from __future__ import annotations

import pytest
import redis

from common.graph.client import GraphClient
from common.state.dispatch import Dispatcher
from common.state.subscription_lifecycle import ensure_subscriptions, renew_subscriptions
from common.state.subscriptions import SubscriptionStore
from tests.fixtures.graph import GraphSandbox, SandboxTenant
from tests.fixtures.graph_client import (  # noqa: F401 - fixtures used by name
    GraphClients,
    graph_clients,
    graph_session,
    graph_tokens,
)
from tests.fixtures.processes import ServiceProcess, wait_until
from tests.listener.conftest import queued, renewals

pytestmark = pytest.mark.slow


@pytest.fixture
def graph(graph_clients: GraphClients, graph_tenant: SandboxTenant) -> GraphClient:  # noqa: F811
    """Our Graph client for the sandbox tenant."""
    return graph_clients(graph_tenant.id)


def test_sandbox_notifications_for_a_new_student_queue_its_sync_job(
    served: tuple[str, ServiceProcess],
    redis_client: redis.Redis,
    store: SubscriptionStore,
    graph: GraphClient,
    graph_tenant: SandboxTenant,
) -> None:
    base, _ = served

    created = ensure_subscriptions(graph, store, graph_tenant.id, base)
    assert sorted(s.resource for s in created) == ["/groups", "/users"]
    assert ensure_subscriptions(graph, store, graph_tenant.id, base) == []

    student = graph_tenant.graph.create_student("Ebba", "Lind", school_id="skola-1")
    wanted = ("worker.jobs.sync_user", [graph_tenant.id, student["id"]])
    wait_until(lambda: wanted in queued(redis_client), timeout=10, what="the student's sync job")
    assert queued(redis_client).count(wanted) == 1


def test_sandbox_reauthorization_event_queues_a_renewal_that_renews_at_graph(  # noqa: PLR0917 - fixtures
    served: tuple[str, ServiceProcess],
    redis_client: redis.Redis,
    store: SubscriptionStore,
    graph: GraphClient,
    graph_sandbox: GraphSandbox,
    graph_tenant: SandboxTenant,
) -> None:
    base, _ = served
    ensure_subscriptions(graph, store, graph_tenant.id, base)

    answer = graph_sandbox.admin("POST", f"/tenants/{graph_tenant.id}/reauthorization-required")
    assert answer.status_code == 202
    wanted = [("worker.jobs.renew_subscriptions", [graph_tenant.id])]
    wait_until(lambda: renewals(redis_client) == wanted, timeout=10, what="the renewal job")
    assert all(s.reauthorize for s in store.for_tenant(graph_tenant.id))

    # what the renewal job does: renew at Graph, clear the flags
    report = renew_subscriptions(graph, store, graph_tenant.id, Dispatcher(redis_client))
    assert len(report.renewed) == 2
    assert not report.recreated
    assert not any(s.reauthorize for s in store.for_tenant(graph_tenant.id))


def test_subscription_gone_at_graph_is_created_again_and_a_reconcile_queued(
    served: tuple[str, ServiceProcess],
    redis_client: redis.Redis,
    store: SubscriptionStore,
    graph: GraphClient,
    graph_tenant: SandboxTenant,
) -> None:
    base, _ = served
    users, groups = sorted(
        ensure_subscriptions(graph, store, graph_tenant.id, base), key=lambda s: s.resource
    )[::-1]
    graph.delete_subscription(users.id)
    store.mark_reauthorization_required(users.id)

    report = renew_subscriptions(graph, store, graph_tenant.id, Dispatcher(redis_client))
    assert [s.resource for s in report.recreated] == ["/users"]
    assert report.reconcile_queued
    assert queued(redis_client, "reconcile") == [("worker.jobs.full_reconcile", [graph_tenant.id])]
    listed = {s["id"] for s in graph.list_subscriptions()}
    assert {report.recreated[0].id, groups.id} == listed
