"""Fault knobs and counters under /_sandbox: throttling, errors, latency, lost notifications."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from tests.fixtures.graph import GraphSandbox, SandboxTenant
from tests.sandbox.graph.webhook import Receiver


def test_throttle_knob_answers_429_with_retry_after(
    graph_sandbox: GraphSandbox, graph_tenant: SandboxTenant
) -> None:
    bystander = graph_sandbox.new_tenant()
    graph_sandbox.set_knobs(graph_tenant.id, throttle_share=1.0, retry_after_seconds=7)
    # a plain request: the tests' Graph client waits out 429s, as an administrator's script does
    response = graph_sandbox.session().get(
        graph_sandbox.info["graph_url"] + "/users",
        headers={"Authorization": f"Bearer {graph_tenant.graph.token()}"},
    )
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert response.json()["error"]["code"] == "TooManyRequests"
    assert bystander.graph.get("/users").status_code == 200  # knobs are per tenant
    graph_sandbox.set_knobs(graph_tenant.id, throttle_share=0.0)
    assert graph_tenant.graph.get("/users").status_code == 200


def test_each_batch_request_is_throttled_on_its_own(
    graph_sandbox: GraphSandbox, graph_tenant: SandboxTenant
) -> None:
    graph_sandbox.set_knobs(graph_tenant.id, throttle_share=1.0, retry_after_seconds=2)
    batch = {"requests": [{"id": str(i), "method": "GET", "url": "/users"} for i in range(3)]}
    response = graph_tenant.graph.post("/$batch", json=batch)
    assert response.status_code == 200
    answers = response.json()["responses"]
    assert [a["status"] for a in answers] == [429, 429, 429]
    assert all(a["headers"]["Retry-After"] == "2" for a in answers)


def test_error_knob_answers_server_errors(
    graph_sandbox: GraphSandbox, graph_tenant: SandboxTenant
) -> None:
    graph_sandbox.set_knobs(graph_tenant.id, error_share=1.0)
    statuses = {graph_tenant.graph.get("/groups").status_code for _ in range(8)}
    assert statuses <= {500, 503}
    assert statuses


def test_latency_knob_slows_every_graph_call(
    graph_sandbox: GraphSandbox, graph_tenant: SandboxTenant
) -> None:
    graph_tenant.graph.token()
    graph_sandbox.set_knobs(graph_tenant.id, latency_ms=300)
    started = time.monotonic()
    assert graph_tenant.graph.get("/users").status_code == 200
    assert time.monotonic() - started >= 0.3


def test_counters_count_requests_per_endpoint_and_status_per_tenant(
    graph_sandbox: GraphSandbox, graph_tenant: SandboxTenant
) -> None:
    staff = graph_tenant.graph.create_staff("Elias", "Holm")
    graph_tenant.graph.get(f"/users/{staff['id']}")
    graph_tenant.graph.get("/users/00000000-0000-0000-0000-000000000000")
    counts = graph_sandbox.counters()
    mine = counts["tenants"][graph_tenant.id]["requests"]
    assert mine["POST /v1.0/users"] == {"201": 1}
    assert mine["GET /v1.0/users/{id}"] == {"200": 1, "404": 1}
    assert mine["POST /{tenant}/oauth2/v2.0/token"] == {"200": 1}
    assert counts["requests"]["GET /v1.0/users/{id}"]["404"] >= 1
    assert counts["total_requests"] >= 4


def test_counters_can_be_reset(graph_sandbox: GraphSandbox, graph_tenant: SandboxTenant) -> None:
    graph_tenant.graph.get("/users")
    assert graph_sandbox.admin("DELETE", "/counters").status_code == 204
    counts = graph_sandbox.counters()
    assert graph_tenant.id not in counts["tenants"]


def test_dropped_notifications_never_arrive_and_are_counted(
    graph_sandbox: GraphSandbox, graph_tenant: SandboxTenant, receiver: Receiver
) -> None:
    expiry = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    created = graph_tenant.graph.post(
        "/subscriptions",
        json={
            "changeType": "updated,deleted",
            "notificationUrl": f"{receiver.url}/notify",
            "resource": "/users",
            "expirationDateTime": expiry,
        },
    )
    assert created.status_code == 201
    graph_sandbox.set_knobs(graph_tenant.id, drop_notification_share=1.0)
    graph_tenant.graph.create_staff("Frida", "Ek")
    # the sandbox drops (and counts) an item when the change is made: it is never queued
    outcomes = graph_sandbox.counters()["tenants"][graph_tenant.id]["notifications"]
    assert outcomes["dropped"] == 1
    assert receiver.items() == []
    assert outcomes["delivered"] == 0


def test_reset_puts_every_knob_back_to_zero(graph_sandbox: GraphSandbox) -> None:
    tenant = graph_sandbox.new_tenant()
    try:
        graph_sandbox.set_knobs(latency_ms=5)
        graph_sandbox.set_knobs(tenant.id, throttle_share=0.5)
    finally:
        graph_sandbox.reset()
    assert graph_sandbox.admin("GET", "/knobs").json()["latency_ms"] == 0
    tenant_knobs = graph_sandbox.admin("GET", f"/tenants/{tenant.id}/knobs").json()
    assert tenant_knobs["throttle_share"] == 0


def test_unknown_or_out_of_range_knobs_are_refused(graph_sandbox: GraphSandbox) -> None:
    assert graph_sandbox.admin("PUT", "/knobs", json={"speed": 1}).status_code == 400
    assert graph_sandbox.admin("PUT", "/knobs", json={"error_share": 2}).status_code == 400


def test_the_admin_api_needs_the_admin_token(graph_sandbox: GraphSandbox) -> None:
    session = graph_sandbox.session()
    response = session.get(graph_sandbox.info["admin_url"] + "/counters")
    assert response.status_code == 401
    wrong = session.get(
        graph_sandbox.info["admin_url"] + "/counters", headers={"Authorization": "Bearer nope"}
    )
    assert wrong.status_code == 401


def test_fail_after_requests_answers_then_fails_every_later_call(
    graph_sandbox: GraphSandbox, graph_tenant: SandboxTenant
) -> None:
    graph_tenant.graph.token()
    graph_sandbox.set_knobs(graph_tenant.id, fail_after_requests=2)
    statuses = [graph_tenant.graph.get("/users").status_code for _ in range(4)]
    assert statuses == [200, 200, 503, 503]
    graph_sandbox.set_knobs(graph_tenant.id, fail_after_requests=0)
    assert graph_tenant.graph.get("/users").status_code == 200
