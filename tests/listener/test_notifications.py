"""The Graph endpoints of the listener: handshake, checks, queueing, coalescing, limits."""

from __future__ import annotations

import json
import logging
import signal
import time
from urllib.parse import quote

import pytest
import redis
from flask.testing import FlaskClient
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Response

from common.config import Secret
from common.state.dispatch import Dispatcher
from common.state.guards import JobGuards
from common.state.subscriptions import SubscriptionStore
from tests.fixtures.processes import wait_until
from tests.fixtures.redis import RedisServer
from tests.listener.conftest import SECRET_KEY, Registered, metric, queued, register, renewals
from tests.listener.graph_payloads import GROUP_ID, OTHER_TENANT, TENANT, USER_ID, change
from tests.listener.graph_payloads import collection as body
from tests.listener.graph_payloads import lifecycle as lifecycle_item

SECOND_USER_ID = "c0ffee00-1234-4abc-8def-0123456789ab"


def post(client: FlaskClient, path: str, payload: object) -> int:
    return client.post(path, json=payload).status_code


def metrics_text(client: FlaskClient) -> str:
    return client.get("/metrics").get_data(as_text=True)


@pytest.mark.parametrize("path", ["/graph/notifications", "/graph/lifecycle"])
def test_validation_handshake_answers_the_decoded_token_as_text_plain(
    client: FlaskClient, path: str
) -> None:
    token = "Validation: Testing client application reachability for subscription Request-Id: 42"
    response = client.post(f"{path}?validationToken={quote(token)}", content_type="text/plain")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.get_data(as_text=True) == token


def test_validation_token_is_echoed_verbatim_never_as_html(client: FlaskClient) -> None:
    token = "<script>alert(1)</script> & more"
    response = client.post(f"/graph/notifications?validationToken={quote(token)}")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert response.get_data(as_text=True) == token


def test_validation_token_over_the_length_limit_is_refused(client: FlaskClient) -> None:
    response = client.post("/graph/notifications?validationToken=" + "a" * 5000)
    assert response.status_code == 400


def test_valid_user_notification_queues_one_sync_user_job_in_live(
    client: FlaskClient, subs: Registered, redis_client: redis.Redis
) -> None:
    assert post(client, "/graph/notifications", body(change(subs.users, USER_ID))) == 202
    assert queued(redis_client) == [("worker.jobs.sync_user", [TENANT, USER_ID])]


def test_valid_group_notification_queues_one_sync_group_job_in_live(
    client: FlaskClient, subs: Registered, redis_client: redis.Redis
) -> None:
    assert post(client, "/graph/notifications", body(change(subs.groups, GROUP_ID))) == 202
    assert queued(redis_client) == [("worker.jobs.sync_group", [TENANT, GROUP_ID])]


def test_permanent_delete_notification_is_queued_like_an_update(
    client: FlaskClient, subs: Registered, redis_client: redis.Redis
) -> None:
    item = change(subs.users, USER_ID, change_type="deleted")
    assert post(client, "/graph/notifications", body(item)) == 202
    assert queued(redis_client) == [("worker.jobs.sync_user", [TENANT, USER_ID])]


def test_several_notifications_in_one_post_each_queue_their_object(
    client: FlaskClient, subs: Registered, redis_client: redis.Redis
) -> None:
    items = body(
        change(subs.users, USER_ID),
        change(subs.groups, GROUP_ID),
        change(subs.users, SECOND_USER_ID),
    )
    assert post(client, "/graph/notifications", items) == 202
    assert sorted(queued(redis_client)) == [
        ("worker.jobs.sync_group", [TENANT, GROUP_ID]),
        ("worker.jobs.sync_user", [TENANT, USER_ID]),
        ("worker.jobs.sync_user", [TENANT, SECOND_USER_ID]),
    ]


def test_many_notifications_for_one_object_become_one_job(
    client: FlaskClient, subs: Registered, redis_client: redis.Redis
) -> None:
    item = change(subs.users, USER_ID)
    assert post(client, "/graph/notifications", body(item, item, item)) == 202
    for _ in range(20):
        assert post(client, "/graph/notifications", body(item)) == 202
    assert queued(redis_client) == [("worker.jobs.sync_user", [TENANT, USER_ID])]
    text = metrics_text(client)
    assert metric(text, "skolsynk_notifications_accepted_total") == 23
    assert metric(text, "skolsynk_jobs_enqueued_total", kind="user") == 1
    assert metric(text, "skolsynk_notifications_deduplicated_total") == 22


def test_notification_while_the_job_runs_queues_exactly_one_more(
    client: FlaskClient, subs: Registered, redis_client: redis.Redis, dispatcher: Dispatcher
) -> None:
    item = change(subs.users, USER_ID)
    assert post(client, "/graph/notifications", body(item)) == 202
    assert len(queued(redis_client)) == 1
    redis_client.delete("rq:queue:live")  # a worker took the job
    with JobGuards(dispatcher.redis).object_job(TENANT, "user", USER_ID) as turn:
        assert turn.acquired
        for _ in range(5):
            assert post(client, "/graph/notifications", body(item)) == 202
    assert queued(redis_client) == [("worker.jobs.sync_user", [TENANT, USER_ID])]


def test_tenant_id_of_the_item_is_matched_whatever_its_case(
    client: FlaskClient, subs: Registered, redis_client: redis.Redis
) -> None:
    item = change(subs.users, USER_ID, tenant_id=TENANT.upper())
    assert post(client, "/graph/notifications", body(item)) == 202
    assert queued(redis_client) == [("worker.jobs.sync_user", [TENANT, USER_ID])]


@pytest.mark.parametrize("resource", [f"users/{USER_ID}", f"/Users/{USER_ID}", f"USERS/{USER_ID}"])
def test_resource_casing_and_a_leading_slash_are_tolerated(
    client: FlaskClient, subs: Registered, redis_client: redis.Redis, resource: str
) -> None:
    assert (
        post(client, "/graph/notifications", body(change(subs.users, USER_ID, resource=resource)))
        == 202
    )
    assert queued(redis_client) == [("worker.jobs.sync_user", [TENANT, USER_ID])]


def test_organization_id_stands_in_for_a_missing_tenant_id(
    client: FlaskClient, subs: Registered, redis_client: redis.Redis
) -> None:
    item = change(subs.users, USER_ID)
    item["organizationId"] = item.pop("tenantId")
    assert post(client, "/graph/notifications", body(item)) == 202
    assert queued(redis_client) == [("worker.jobs.sync_user", [TENANT, USER_ID])]


@pytest.mark.parametrize(
    ("make_item", "reason"),
    [
        (lambda s: change(s.users, USER_ID, client_state="guessed-state"), "wrong_client_state"),
        (lambda s: {**change(s.users, USER_ID), "clientState": None}, "wrong_client_state"),
        (
            lambda s: {**change(s.users, USER_ID), "subscriptionId": "not-a-subscription-of-ours"},
            "unknown_subscription",
        ),
        (lambda s: change(s.users, USER_ID, tenant_id=OTHER_TENANT), "wrong_tenant"),
        # another tenant's genuine subscription and clientState, claiming to be our tenant
        (lambda s: change(s.other_tenant_users, USER_ID, tenant_id=TENANT), "wrong_tenant"),
        (lambda s: change(s.users, USER_ID, resource=f"Groups/{GROUP_ID}"), "wrong_resource"),
        (
            lambda s: change(s.users, USER_ID, resource=f"Users/{USER_ID}/messages"),
            "unsupported_resource",
        ),
        (lambda s: change(s.users, "not-a-guid"), "unsupported_resource"),
        (lambda s: {**change(s.users, USER_ID), "changeType": "exploded"}, "malformed"),
        (
            lambda s: {k: v for k, v in change(s.users, USER_ID).items() if k != "subscriptionId"},
            "malformed",
        ),
        (lambda s: "just a string", "malformed"),
    ],
)
def test_item_failing_a_check_is_answered_202_queues_nothing_and_is_counted_by_reason(
    client: FlaskClient,
    subs: Registered,
    redis_client: redis.Redis,
    make_item: object,
    reason: str,
) -> None:
    item = make_item(subs)  # type: ignore[operator]
    assert post(client, "/graph/notifications", body(item)) == 202
    assert queued(redis_client) == []
    text = metrics_text(client)
    assert (
        metric(
            text, "skolsynk_notifications_rejected_total", endpoint="notifications", reason=reason
        )
        == 1
    )
    assert metric(text, "skolsynk_notifications_accepted_total") == 0


def test_one_bad_item_does_not_spoil_the_good_ones_beside_it(
    client: FlaskClient, subs: Registered, redis_client: redis.Redis
) -> None:
    items = body(change(subs.users, USER_ID, client_state="wrong"), change(subs.groups, GROUP_ID))
    assert post(client, "/graph/notifications", items) == 202
    assert queued(redis_client) == [("worker.jobs.sync_group", [TENANT, GROUP_ID])]


def test_client_state_never_reaches_the_logs(
    client: FlaskClient, subs: Registered, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    items = body(change(subs.users, USER_ID), change(subs.users, USER_ID, client_state="guess-9f"))
    assert post(client, "/graph/notifications", items) == 202
    assert post(client, "/graph/lifecycle", body(lifecycle_item(subs.users))) == 202
    logged = " ".join(f"{r.getMessage()} {vars(r)}" for r in caplog.records)
    assert subs.users.client_state not in logged
    assert "guess-9f" not in logged


def test_lifecycle_reauthorization_required_queues_a_renewal_for_the_tenant(
    client: FlaskClient, subs: Registered, redis_client: redis.Redis, store: object
) -> None:
    assert post(client, "/graph/lifecycle", body(lifecycle_item(subs.users))) == 202
    assert renewals(redis_client) == [("worker.jobs.renew_subscriptions", [TENANT])]
    assert store.get(subs.users.id).reauthorize  # type: ignore[attr-defined]
    assert queued(redis_client) == []  # nothing on the live queue


def test_lifecycle_with_organization_id_is_accepted(
    client: FlaskClient, subs: Registered, redis_client: redis.Redis
) -> None:
    item = lifecycle_item(subs.groups, tenant_key="organizationId")
    assert post(client, "/graph/lifecycle", body(item)) == 202
    assert renewals(redis_client) == [("worker.jobs.renew_subscriptions", [TENANT])]


def test_repeated_reauthorization_events_queue_one_renewal(
    client: FlaskClient, subs: Registered, redis_client: redis.Redis
) -> None:
    items = body(lifecycle_item(subs.users), lifecycle_item(subs.groups))
    assert post(client, "/graph/lifecycle", items) == 202
    assert post(client, "/graph/lifecycle", items) == 202
    assert renewals(redis_client) == [("worker.jobs.renew_subscriptions", [TENANT])]


def test_lifecycle_with_wrong_client_state_queues_nothing(
    client: FlaskClient, subs: Registered, redis_client: redis.Redis
) -> None:
    item = lifecycle_item(subs.users, client_state="guessed")
    assert post(client, "/graph/lifecycle", body(item)) == 202
    assert renewals(redis_client) == []
    text = metrics_text(client)
    assert (
        metric(
            text,
            "skolsynk_notifications_rejected_total",
            endpoint="lifecycle",
            reason="wrong_client_state",
        )
        == 1
    )


@pytest.mark.parametrize("event", ["subscriptionRemoved", "missed", "somethingNew"])
def test_other_lifecycle_events_are_counted_and_not_acted_on(
    client: FlaskClient, subs: Registered, redis_client: redis.Redis, event: str
) -> None:
    assert post(client, "/graph/lifecycle", body(lifecycle_item(subs.users, event))) == 202
    assert renewals(redis_client) == []
    label = event if event != "somethingNew" else "other"
    assert metric(metrics_text(client), "skolsynk_lifecycle_events_total", event=label) == 1


def test_body_over_one_mebibyte_is_413(client: FlaskClient, subs: Registered) -> None:
    filler = "x" * (1024 * 1024)
    data = json.dumps({"value": [], "padding": filler})
    response = client.post("/graph/notifications", data=data, content_type="application/json")
    assert response.status_code == 413


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_body_that_is_not_json_by_content_type_is_415(
    client: FlaskClient, subs: Registered, content_type: str
) -> None:
    data = json.dumps(body(change(subs.users, USER_ID)))
    response = client.post("/graph/notifications", data=data, content_type=content_type)
    assert response.status_code == 415


@pytest.mark.parametrize(
    "data",
    ["", "{", "[]", '"value"', '{"value": 1}', '{"value": null}', '{"items": []}', "\xff\xfe"],
)
@pytest.mark.parametrize("path", ["/graph/notifications", "/graph/lifecycle"])
def test_body_that_is_not_a_notification_collection_is_400(
    client: FlaskClient, data: str, path: str
) -> None:
    response = client.post(path, data=data.encode("latin-1"), content_type="application/json")
    assert response.status_code == 400


def test_deeply_nested_json_is_400_not_a_crash(client: FlaskClient) -> None:
    data = "[" * 100_000 + "]" * 100_000
    response = client.post("/graph/notifications", data=data, content_type="application/json")
    assert response.status_code == 400


def test_empty_collection_is_accepted(client: FlaskClient, redis_client: redis.Redis) -> None:
    assert post(client, "/graph/notifications", {"value": []}) == 202
    assert queued(redis_client) == []


def test_healthz_answers_while_the_process_is_up(client: FlaskClient) -> None:
    assert client.get("/healthz").status_code == 200


def test_metrics_are_prometheus_text(client: FlaskClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    for name in (
        "skolsynk_notifications_received_total",
        "skolsynk_notifications_accepted_total",
        "skolsynk_notifications_rejected_total",
        "skolsynk_jobs_enqueued_total",
        "skolsynk_notifications_deduplicated_total",
        "skolsynk_lifecycle_events_total",
        "skolsynk_listener_redis_errors_total",
        "skolsynk_listener_request_seconds_bucket",
    ):
        assert name in text


def test_redis_down_answers_503_within_3_seconds_then_recovers_when_it_is_back(
    client: FlaskClient,
    subs: Registered,
    redis_server: RedisServer,
) -> None:
    item = body(change(subs.users, USER_ID))
    assert client.get("/readyz").status_code == 200
    redis_server.stop()
    try:
        started = time.monotonic()
        response = client.post("/graph/notifications", json=item)
        elapsed = time.monotonic() - started
        assert response.status_code == 503
        assert elapsed < 3.0
        assert client.get("/readyz").status_code == 503
        assert client.get("/healthz").status_code == 200
        assert metric(metrics_text(client), "skolsynk_listener_redis_errors_total") == 1
    finally:
        redis_server.start()
    # the restarted Redis is empty (no persistence in tests): register again, then deliver
    fresh = redis_server.client()
    register(SubscriptionStore(fresh, Secret(SECRET_KEY)))
    # the process stops asking Redis for a moment after it failed, then finds it by itself
    wait_until(lambda: client.get("/readyz").status_code == 200, timeout=5, what="readiness")
    assert client.post("/graph/notifications", json=item).status_code == 202
    assert queued(fresh) == [("worker.jobs.sync_user", [TENANT, USER_ID])]
    fresh.close()


def test_hung_redis_answers_503_within_3_seconds(
    client: FlaskClient, subs: Registered, redis_server: RedisServer
) -> None:
    item = body(change(subs.users, USER_ID))
    assert redis_server.process is not None
    redis_server.process.signal(signal.SIGSTOP)  # up, accepting connections, never answering
    try:
        started = time.monotonic()
        response = client.post("/graph/notifications", json=item)
        assert response.status_code == 503
        assert time.monotonic() - started < 3.0
    finally:
        redis_server.process.signal(signal.SIGCONT)
    wait_until(lambda: client.get("/readyz").status_code == 200, timeout=5, what="readiness")
    assert client.post("/graph/notifications", json=item).status_code == 202


@pytest.mark.parametrize(
    "data",
    [
        None,  # a valid change notification for the subscribed users
        "{",
        '{"value": 1}',
        "[" * 5000 + "]" * 5000,
        '{"value": []}',
    ],
)
def test_a_body_sent_without_content_length_is_answered_as_one_with_it(
    client: FlaskClient, subs: Registered, redis_client: redis.Redis, data: str | None
) -> None:
    # A request with a Content-Length takes the listener's lean path (deliver_notifications),
    # one without it (a chunked upload, which gunicorn ends for the app) Flask's view: the
    # same body must get the same answer, and queue the same, either way
    raw = (data if data is not None else json.dumps(body(change(subs.users, USER_ID)))).encode()
    answers = []
    for with_length in (True, False):
        redis_client.flushdb()  # the suite's own Redis: each path starts from the same state
        register(SubscriptionStore(redis_client, Secret(SECRET_KEY)))
        environ = EnvironBuilder(
            path="/graph/notifications",
            method="POST",
            data=raw,
            content_type="application/json; charset=utf-8",
        ).get_environ()
        if not with_length:
            del environ["CONTENT_LENGTH"]
            environ["wsgi.input_terminated"] = True
        response = Response.from_app(client.application, environ)
        answers.append(
            (
                response.status,
                response.headers.get("Content-Type"),
                response.get_data(),
                queued(redis_client),
            )
        )
    assert answers[0] == answers[1]
    assert answers[0][0] == (
        "202 ACCEPTED" if data in (None, '{"value": []}') else "400 BAD REQUEST"
    )
