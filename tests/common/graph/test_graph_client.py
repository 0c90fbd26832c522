"""The Graph client against the graph sandbox: paging, batches, retries, errors, delta, writes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from common.errors import (
    DeltaExpired,
    GraphAuthError,
    GraphRequestError,
    GraphUnavailable,
    NotFound,
    Throttled,
)
from common.graph.answers import translate
from common.graph.auth import MsalTokenProvider
from common.graph.batch import Batcher
from common.graph.client import GraphClient
from common.http import RetryPolicy
from tests.fixtures.graph_client import GraphClients, RecordedSleep, load_sample

PATIENT = RetryPolicy(attempts=12, base_delay_seconds=0.01, max_delay_seconds=0.05)
VERY_PATIENT = RetryPolicy(attempts=30, base_delay_seconds=0.01, max_delay_seconds=0.05)


def batch(client: GraphClient, requests_: list[tuple[str, str, str]]) -> dict[str, tuple[int, Any]]:
    """Send ``(id, method, url)`` requests through a ``Batcher``; id -> (status, body)."""
    results: dict[str, tuple[int, Any]] = {}
    batcher = Batcher(client)
    for request_id, method, url in requests_:

        def done(status: int, body: Any, request_id: str = request_id) -> None:
            results[request_id] = (status, body)

        batcher.request(url, done, method=method)
    batcher.run()
    return results


@pytest.fixture
def knobs(graph_sandbox: Any) -> Iterator[Any]:
    """The sandbox's fault knobs, back to defaults after the test."""
    yield graph_sandbox
    graph_sandbox.reset()


@pytest.fixture
def classic25(sds_tenants: dict[str, Any]) -> Any:
    return sds_tenants["classic-25"]


def user_ids(client: GraphClient) -> list[str]:
    return [u["id"] for u in client.list_all("/users", {"$select": "id", "$top": 999})]


def admin(graph_sandbox: Any, method: str, path: str) -> None:
    graph_sandbox.admin(method, path).raise_for_status()


# --- paging and counting ------------------------------------------------------------------------


def test_pages_follow_next_link_to_the_end(graph_clients: GraphClients, classic25: Any) -> None:
    client = graph_clients(classic25.id)
    everyone = user_ids(client)
    client = graph_clients(classic25.id)
    pages = list(client.iter_pages("/users", {"$select": "id", "$top": 5}))
    seen = [u["id"] for page in pages for u in page["value"]]
    assert len(pages) == -(-len(everyone) // 5) > 4
    assert sorted(seen) == sorted(everyone)
    assert client.request_count == len(pages)
    assert client.status_counts == {200: len(pages)}


# --- batches ------------------------------------------------------------------------------------


def test_batch_splits_into_calls_of_twenty_and_matches_answers_by_id(
    graph_clients: GraphClients, classic25: Any
) -> None:
    ids = user_ids(graph_clients(classic25.id))
    requests_ = [(f"r{i}", "GET", f"/users/{ids[i % len(ids)]}?$select=id") for i in range(45)]
    client = graph_clients(classic25.id)
    answers = batch(client, requests_)
    assert client.batch_count == 3
    assert client.inner_request_count == 45
    assert set(answers) == {r[0] for r in requests_}
    for request_id, _, url in requests_:
        status, body = answers[request_id]
        assert status == 200
        assert url.startswith(f"/users/{body['id']}?")


def test_batch_returns_inner_errors_other_than_429_and_5xx_as_they_came(
    graph_clients: GraphClients, classic25: Any
) -> None:
    answers = batch(graph_clients(classic25.id), [("missing", "GET", "/users/no-such-user")])
    status, body = answers["missing"]
    assert status == 404
    assert body["error"]["code"] == "Request_ResourceNotFound"


def test_batch_retries_inner_429_waiting_exactly_retry_after(
    knobs: Any, graph_clients: GraphClients, classic25: Any
) -> None:
    ids = user_ids(graph_clients(classic25.id))
    wanted = {f"{uid}/{n}": uid for uid in ids for n in range(3)}  # ~70 requests, 4 batches
    knobs.set_knobs(tenant_id=classic25.id, throttle_share=0.3, retry_after_seconds=2)
    sleep = RecordedSleep()
    client = graph_clients(classic25.id, policy=PATIENT, sleep=sleep)
    answers = batch(
        client, [(key, "GET", f"/users/{uid}?$select=id") for key, uid in wanted.items()]
    )
    assert {key: (status, body["id"]) for key, (status, body) in answers.items()} == {
        key: (200, uid) for key, uid in wanted.items()
    }
    # one wait per round, for the longest Retry-After among its throttled requests
    assert 0 < len(sleep.waits) <= client.inner_status_counts[429]
    assert set(sleep.waits) == {2.0}


def test_batch_inner_429_beyond_the_attempts_raises_throttled(
    knobs: Any, graph_clients: GraphClients, classic25: Any
) -> None:
    knobs.set_knobs(tenant_id=classic25.id, throttle_share=1.0, retry_after_seconds=3)
    sleep = RecordedSleep()
    client = graph_clients(classic25.id, sleep=sleep)
    with pytest.raises(Throttled) as caught:
        batch(client, [("a", "GET", "/users?$select=id")])
    assert caught.value.retry_after == 3.0
    assert sleep.waits == [3.0, 3.0, 3.0]  # four attempts, three waits
    assert client.batch_count == 4


def test_batch_inner_5xx_beyond_the_attempts_raises_graph_unavailable(
    knobs: Any, graph_clients: GraphClients, classic25: Any
) -> None:
    knobs.set_knobs(tenant_id=classic25.id, error_share=1.0)
    client = graph_clients(classic25.id)
    with pytest.raises(GraphUnavailable, match="after 4 attempts"):
        batch(client, [("a", "GET", "/users?$select=id")])


# --- retries and errors outside batches ---------------------------------------------------------


def test_waits_exactly_retry_after_on_429_then_gives_up_throttled(
    knobs: Any, graph_clients: GraphClients, classic25: Any
) -> None:
    knobs.set_knobs(tenant_id=classic25.id, throttle_share=1.0, retry_after_seconds=5)
    sleep = RecordedSleep()
    client = graph_clients(classic25.id, sleep=sleep)
    with pytest.raises(Throttled):
        client.get("/users", {"$select": "id"})
    assert sleep.waits == [5.0, 5.0, 5.0]
    assert client.status_counts == {429: 4}


def test_429_now_and_then_is_waited_out_and_the_page_comes_back(
    knobs: Any, graph_clients: GraphClients, classic25: Any
) -> None:
    everyone = user_ids(graph_clients(classic25.id))
    knobs.set_knobs(tenant_id=classic25.id, throttle_share=0.5, retry_after_seconds=1)
    sleep = RecordedSleep()
    client = graph_clients(classic25.id, policy=VERY_PATIENT, sleep=sleep)
    pages = list(client.iter_pages("/users", {"$select": "id", "$top": 1}))
    assert sorted(u["id"] for p in pages for u in p["value"]) == sorted(everyone)
    assert sleep.waits and set(sleep.waits) == {1.0}
    assert client.status_counts == {200: len(pages), 429: len(sleep.waits)}


def test_5xx_beyond_the_attempts_raises_graph_unavailable(
    knobs: Any, graph_clients: GraphClients, classic25: Any
) -> None:
    knobs.set_knobs(tenant_id=classic25.id, error_share=1.0)
    client = graph_clients(classic25.id)
    with pytest.raises(GraphUnavailable, match="after 4 attempts"):
        client.get("/users")
    assert client.request_count == 4


class StaleFirst:
    """Hands out a token Graph refuses until told to forget it (a token revoked early)."""

    def __init__(self, real: MsalTokenProvider, *, forever: bool = False) -> None:
        self.real = real
        self.forever = forever
        self.stale = True
        self.invalidations = 0

    def token(self, tenant_id: str) -> str:
        return (
            "eyJhbGciOiJub25lIn0.eyJ0aWQiOiJ4In0.c2ln" if self.stale else self.real.token(tenant_id)
        )

    def invalidate(self, tenant_id: str) -> None:
        self.invalidations += 1
        self.stale = self.forever
        self.real.invalidate(tenant_id)


def test_401_forgets_the_token_and_retries_once(
    graph_clients: GraphClients, graph_tokens: MsalTokenProvider, classic25: Any
) -> None:
    tokens = StaleFirst(graph_tokens)
    client = GraphClient(
        graph_clients(classic25.id).transport, tokens, graph_clients.info["graph_url"], classic25.id
    )
    assert client.get("/users", {"$select": "id"})["value"]
    assert tokens.invalidations == 1
    assert client.status_counts == {401: 1, 200: 1}


def test_401_after_a_fresh_token_raises_graph_auth_error(
    graph_clients: GraphClients, graph_tokens: MsalTokenProvider, classic25: Any
) -> None:
    tokens = StaleFirst(graph_tokens, forever=True)
    client = GraphClient(
        graph_clients(classic25.id).transport, tokens, graph_clients.info["graph_url"], classic25.id
    )
    with pytest.raises(GraphAuthError, match="did not accept the application's token"):
        client.get("/users")
    assert client.status_counts == {401: 2}


def test_404_raises_not_found(graph_clients: GraphClients, classic25: Any) -> None:
    with pytest.raises(NotFound, match="Request_ResourceNotFound"):
        graph_clients(classic25.id).get("/users/no-such-user")


def test_other_4xx_raises_graph_request_error_with_code_and_message_only(
    graph_clients: GraphClients, classic25: Any
) -> None:
    with pytest.raises(GraphRequestError) as caught:
        graph_clients(classic25.id).get("/users", {"$top": 5000})
    assert caught.value.status == 400
    assert caught.value.code == "Request_BadRequest"
    assert "Invalid page size" in str(caught.value)
    assert "request-id" not in str(caught.value)
    assert "innerError" not in str(caught.value)


def graph_error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "innerError": {"request-id": "r"}}}


@pytest.mark.parametrize(
    ("status", "body", "delta", "kind", "words"),
    [
        (
            403,
            graph_error("Authorization_RequestDenied", "Insufficient privileges."),
            False,
            GraphAuthError,
            "lacks a permission",
        ),
        (
            403,
            graph_error("Forbidden", "Missing role permissions; API requires 'EduRoster.Read.All'"),
            False,
            GraphAuthError,
            "EduRoster.Read.All",
        ),
        (400, graph_error("syncStateNotFound", "expired"), True, DeltaExpired, "start a full"),
        (400, graph_error("SyncStateNotFound", "expired"), True, DeltaExpired, "delta link"),
        (410, graph_error("resyncRequired", "gone"), False, DeltaExpired, "410"),
        (400, graph_error("syncStateNotFound", "odd"), False, GraphRequestError, "refused"),
        (404, graph_error("Request_ResourceNotFound", "x"), False, NotFound, "has no"),
        (409, "not json", False, GraphRequestError, "(409)"),
        (502, None, False, GraphUnavailable, "failed"),
    ],
)
def test_translates_graph_answers_into_the_error_tree(
    status: int, body: Any, delta: bool, kind: type[Exception], words: str
) -> None:
    error = translate(status, body, "GET /users/delta", "t1", delta=delta)
    assert type(error) is kind
    assert words in str(error)


def test_refuses_to_send_the_token_to_another_host(
    graph_clients: GraphClients, classic25: Any
) -> None:
    with pytest.raises(GraphRequestError, match="another host"):
        graph_clients(classic25.id).get("https://elsewhere.example/v1.0/users")


# --- delta --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_delta_merges_members_spread_over_pages_and_reports_removals(
    graph_sandbox: Any, graph_clients: GraphClients
) -> None:
    tenant = graph_sandbox.new_tenant(generate=1200, seed=7)
    client = graph_clients(tenant.id)
    groups = client.list_all("/groups", {"$select": "id,displayName", "$top": 999})
    biggest = max(
        groups,
        key=lambda g: len(client.list_all(f"/groups/{g['id']}/members", {"$top": 999})),
    )
    members = {m["id"] for m in client.list_all(f"/groups/{biggest['id']}/members", {"$top": 999})}
    assert len(members) > 400  # more than one delta page of member references
    items, link = client.delta("/groups/delta", {"$select": "id,displayName,members"})
    merged = {i.id: i for i in items}
    assert len(merged) == len(items) == len(groups)
    assert merged[biggest["id"]].members_added == members
    assert merged[biggest["id"]].properties["displayName"] == biggest["displayName"]

    gone, moved = sorted(members)[:2]
    client.delete(f"/groups/{biggest['id']}/members/{moved}/$ref")
    client.delete(f"/users/{gone}")
    users, user_link = client.delta("/users/delta", {"$select": "id,displayName"})
    client.delete(f"/directory/deletedItems/{gone}")
    items, link = client.delta("/groups/delta", link)
    change = {i.id: i for i in items}[biggest["id"]]
    assert {gone, moved} <= change.members_removed
    assert change.removed is None
    users, _ = client.delta("/users/delta", user_link)
    assert {u.id: u.removed for u in users}[gone] == "deleted"


def test_soft_deleted_user_shows_as_removed_changed(
    graph_sandbox: Any, graph_clients: GraphClients
) -> None:
    tenant = load_sample(graph_sandbox, "classic-min")
    client = graph_clients(tenant.id)
    _, link = client.delta("/users/delta", {"$select": "id"})
    victim = user_ids(client)[0]
    client.delete(f"/users/{victim}")
    items, _ = client.delta("/users/delta", link)
    assert [(i.id, i.removed) for i in items] == [(victim, "changed")]


def test_expired_or_gone_delta_link_raises_delta_expired(
    graph_sandbox: Any, graph_clients: GraphClients
) -> None:
    tenant = graph_sandbox.new_tenant()
    client = graph_clients(tenant.id)
    _, link = client.delta("/users/delta", {"$select": "id"})
    admin(graph_sandbox, "POST", f"/tenants/{tenant.id}/expire-delta-tokens")
    with pytest.raises(DeltaExpired) as expired:
        client.delta("/users/delta", link)
    assert (expired.value.status, expired.value.code) == (400, "syncStateNotFound")
    _, link = client.delta("/users/delta", {"$select": "id"})
    admin(graph_sandbox, "POST", f"/tenants/{tenant.id}/delta-gone")
    with pytest.raises(DeltaExpired) as gone:
        client.delta("/users/delta", link)
    assert gone.value.status == 410


# --- subscriptions ------------------------------------------------------------------------------


@pytest.fixture
def notification_endpoint(httpserver: HTTPServer) -> str:
    """A loopback endpoint that answers Graph's validation handshake (and accepts the rest)."""

    def answer(request: Request) -> Response:
        token = request.args.get("validationToken", "")
        return Response(token, status=200 if token else 202, content_type="text/plain")

    httpserver.expect_request(re.compile(".*"), method="POST").respond_with_handler(answer)
    return httpserver.url_for("").rstrip("/")


def test_subscription_create_list_renew_delete(
    graph_sandbox: Any, graph_clients: GraphClients, notification_endpoint: str
) -> None:
    client = graph_clients(graph_sandbox.new_tenant().id)
    expiry = datetime.now(UTC) + timedelta(days=2)
    created = client.create_subscription(
        "/users",
        "updated,deleted",
        notification_endpoint + "/graph/notifications",
        notification_endpoint + "/graph/lifecycle",
        expiry,
        "secret-client-state",
    )
    assert "clientState" not in created
    assert created["resource"] == "/users"
    assert [s["id"] for s in client.list_subscriptions()] == [created["id"]]
    later = expiry + timedelta(days=5)
    renewed = client.renew_subscription(created["id"], later)
    assert client.subscriptions()[0].expiration == later.replace(microsecond=0)
    assert renewed["id"] == created["id"]
    client.delete_subscription(created["id"])
    assert client.list_subscriptions() == []
    with pytest.raises(NotFound):
        client.renew_subscription(created["id"], later)
    with pytest.raises(NotFound):
        client.delete_subscription(created["id"])


def test_subscription_with_created_change_type_is_refused(
    graph_sandbox: Any, graph_clients: GraphClients, notification_endpoint: str
) -> None:
    client = graph_clients(graph_sandbox.new_tenant().id)
    with pytest.raises(GraphRequestError) as caught:
        client.create_subscription(
            "/users",
            "created,updated",
            notification_endpoint,
            None,
            datetime.now(UTC) + timedelta(days=1),
            "state",
        )
    assert caught.value.status == 400
