"""MSAL application tokens against the graph sandbox's identity endpoints."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from common.errors import GraphAuthError, GraphUnavailable
from tests.fixtures.graph_client import GraphClients
from tests.fixtures.processes import free_port

TOKEN_ENDPOINT = "POST /{tenant}/oauth2/v2.0/token"


def token_requests(graph_sandbox: Any, tenant_id: str) -> int:
    tenant = graph_sandbox.counters()["tenants"].get(tenant_id, {})
    return sum(tenant.get("requests", {}).get(TOKEN_ENDPOINT, {}).values())


@pytest.fixture(scope="module")
def tenant(graph_sandbox: Any) -> Any:
    return graph_sandbox.new_tenant()


def test_issues_a_token_for_a_sandbox_tenant_and_reuses_it(
    graph_sandbox: Any, graph_clients: GraphClients, tenant: Any
) -> None:
    tokens = graph_clients.token_provider()
    before = token_requests(graph_sandbox, tenant.id)
    first = tokens.token(tenant.id)
    assert first.count(".") == 2  # a JWT
    assert tokens.token(tenant.id) == first
    assert token_requests(graph_sandbox, tenant.id) == before + 1


def test_invalidate_makes_the_next_call_fetch_a_new_token(
    graph_sandbox: Any, graph_clients: GraphClients, tenant: Any
) -> None:
    tokens = graph_clients.token_provider()
    tokens.token(tenant.id)
    before = token_requests(graph_sandbox, tenant.id)
    tokens.invalidate(tenant.id)
    tokens.token(tenant.id)
    assert token_requests(graph_sandbox, tenant.id) == before + 1


def test_a_token_within_the_refresh_margin_is_renewed(
    graph_sandbox: Any, graph_clients: GraphClients, tenant: Any
) -> None:
    tokens = graph_clients.token_provider()
    tokens.refresh_margin_seconds = 24 * 3600.0  # wider than any token's lifetime
    before = token_requests(graph_sandbox, tenant.id)
    tokens.token(tenant.id)
    tokens.token(tenant.id)
    assert token_requests(graph_sandbox, tenant.id) == before + 2


def test_concurrent_callers_share_one_token_request(
    graph_sandbox: Any, graph_clients: GraphClients, tenant: Any
) -> None:
    tokens = graph_clients.token_provider()
    tokens.token(tenant.id)  # builds the MSAL client (tenant discovery) once
    tokens.invalidate(tenant.id)
    before = token_requests(graph_sandbox, tenant.id)
    seen: list[str] = []
    start = threading.Barrier(8)

    def take() -> None:
        start.wait()
        seen.append(tokens.token(tenant.id))

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(seen)) == 1
    assert token_requests(graph_sandbox, tenant.id) == before + 1


def test_tokens_are_kept_per_tenant(graph_sandbox: Any, graph_clients: GraphClients) -> None:
    one, two = graph_sandbox.new_tenant(), graph_sandbox.new_tenant()
    tokens = graph_clients.token_provider()
    assert tokens.token(one.id) != tokens.token(two.id)


def test_wrong_secret_raises_graph_auth_error_with_a_sentence(
    graph_clients: GraphClients, tenant: Any
) -> None:
    wrong = "not-the-secret-" + "x" * 20
    tokens = graph_clients.token_provider(secret=wrong)
    with pytest.raises(GraphAuthError) as caught:
        tokens.token(tenant.id)
    message = str(caught.value)
    assert "client secret is wrong or has expired" in message
    assert tenant.id in message
    assert wrong not in message
    assert graph_clients.info["client_secret"] not in message


def test_unknown_tenant_raises_graph_auth_error(graph_clients: GraphClients) -> None:
    tokens = graph_clients.token_provider()
    with pytest.raises(GraphAuthError, match="does not know the tenant"):
        tokens.token("00000000-0000-4000-8000-000000000000")


def test_unreachable_identity_platform_raises_graph_unavailable(
    graph_clients: GraphClients,
) -> None:
    tokens = graph_clients.token_provider(authority=f"https://127.0.0.1:{free_port()}")
    with pytest.raises(GraphUnavailable, match="could not be reached"):
        tokens.token("00000000-0000-4000-8000-000000000000")
