"""The listener through Redis outages: every answer fast (503 while Redis is down, hung or full),
every connection back to its pool, and back to 202 by itself once Redis is back."""

from __future__ import annotations

import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import requests
from flask import Flask

from common.config import Config, Secret
from common.errors import QueueUnavailable
from common.state.connections import LISTENER_MAX_CONNECTIONS
from common.state.dispatch import Change
from common.state.subscriptions import SubscriptionStore
from listener.app import create_app
from listener.state import EXTENSION, ListenerState
from tests.fixtures.processes import ServiceProcess, wait_until
from tests.fixtures.redis import RedisServer
from tests.listener.conftest import SECRET_KEY, Registered, queued, register
from tests.listener.graph_payloads import TENANT, change, collection

GRAPH_DEADLINE_SECONDS = 3.0


def new_id() -> str:
    return str(uuid.uuid4())


def test_after_an_outage_of_120_failed_requests_the_process_answers_the_next_40_with_202(
    app: Flask, subs: Registered, redis_server: RedisServer
) -> None:
    client = app.test_client()
    state: ListenerState = app.extensions[EXTENSION]
    assert client.post("/graph/notifications", json=collection(change(subs.users, new_id())))
    redis_server.stop()
    try:
        # more failures than the pool holds connections, through the HTTP path and straight
        # into the enqueue path (which the breaker would otherwise spare most of them)
        answers = [
            client.post("/graph/notifications", json=collection(change(subs.users, new_id())))
            for _ in range(60)
        ]
        assert {a.status_code for a in answers} == {503}
        for _ in range(LISTENER_MAX_CONNECTIONS + 60):
            with pytest.raises(QueueUnavailable):
                state.dispatcher.enqueue_changes([Change(TENANT, "user", new_id())])
    finally:
        redis_server.start()
    fresh = redis_server.client()
    subs = register(SubscriptionStore(fresh, Secret(SECRET_KEY)))
    wait_until(lambda: client.get("/readyz").status_code == 200, timeout=5, what="readiness")

    with ThreadPoolExecutor(8) as pool:
        statuses = list(
            pool.map(
                lambda _: (
                    client.post(
                        "/graph/notifications", json=collection(change(subs.users, new_id()))
                    ).status_code
                ),
                range(40),
            )
        )
    assert statuses == [202] * 40
    assert len(queued(fresh)) == 40
    fresh.close()


@pytest.mark.slow
def test_32_concurrent_senders_against_a_hung_redis_all_get_503_within_3_seconds(
    served: tuple[str, ServiceProcess], redis_url: str, redis_server: RedisServer
) -> None:
    base, _ = served
    client = redis.Redis.from_url(redis_url)
    subs = register(SubscriptionStore(client, Secret(SECRET_KEY)))
    client.close()
    assert requests.get(base + "/readyz", timeout=5).status_code == 200

    def send(_: int) -> tuple[int, float]:
        started = time.monotonic()
        answer = requests.post(
            base + "/graph/notifications",
            json=collection(change(subs.users, new_id())),
            timeout=10,
        )
        return answer.status_code, time.monotonic() - started

    assert redis_server.process is not None
    redis_server.process.signal(signal.SIGSTOP)  # accepts connections, never answers
    try:
        with ThreadPoolExecutor(32) as pool:
            results = list(pool.map(send, range(32)))
        assert requests.get(base + "/readyz", timeout=5).status_code == 503
    finally:
        redis_server.process.signal(signal.SIGCONT)
    assert [status for status, _ in results] == [503] * 32
    assert max(seconds for _, seconds in results) < GRAPH_DEADLINE_SECONDS

    # back by itself: both worker processes answer 202 again within seconds
    wait_until(
        lambda: all(send(i)[0] == 202 for i in range(8)), timeout=10, what="202s once Redis is back"
    )


def test_a_full_redis_is_answered_503_at_once_and_readiness_fails(
    app: Flask, config: Config, subs: Registered, redis_client: redis.Redis
) -> None:
    client = app.test_client()
    # a second process, which has not met the full Redis yet: its write probe must fail
    other = create_app(config).test_client()
    used = int(redis_client.info("memory")["used_memory"])
    redis_client.config_set("maxmemory", str(used // 2))
    redis_client.config_set("maxmemory-policy", "noeviction")
    try:
        started = time.monotonic()
        answer = client.post("/graph/notifications", json=collection(change(subs.users, new_id())))
        assert answer.status_code == 503
        assert time.monotonic() - started < 1.0
        assert redis_client.ping()  # a ping still answers; the write probe does not
        assert other.get("/readyz").status_code == 503
        assert client.get("/readyz").status_code == 503
    finally:
        redis_client.config_set("maxmemory", "0")
    wait_until(lambda: client.get("/readyz").status_code == 200, timeout=5, what="readiness")
    answer = client.post("/graph/notifications", json=collection(change(subs.users, new_id())))
    assert answer.status_code == 202
