"""The listener as it runs in production: ``create_app()`` under gunicorn with the deploy config."""

from __future__ import annotations

import json

import pytest
import redis
import requests

from common.config import Secret
from common.state.subscriptions import SubscriptionStore
from tests.fixtures.processes import ServiceProcess
from tests.listener.conftest import SECRET_KEY, Registered, metric, queued, register
from tests.listener.graph_payloads import GROUP_ID, TENANT, USER_ID, change, collection

pytestmark = pytest.mark.slow


def test_gunicorn_serving_create_app_queues_a_notification_and_sums_metrics_over_workers(
    served: tuple[str, ServiceProcess], redis_url: str
) -> None:
    base, process = served
    client = redis.Redis.from_url(redis_url)
    subs: Registered = register(SubscriptionStore(client, Secret(SECRET_KEY)))
    session = requests.Session()

    handshake = session.post(base + "/graph/notifications?validationToken=abc%20def", timeout=5)
    assert (handshake.status_code, handshake.text) == (200, "abc def")
    assert handshake.headers["Content-Type"].startswith("text/plain")

    for item in (change(subs.users, USER_ID), change(subs.groups, GROUP_ID)):
        answer = session.post(base + "/graph/notifications", json=collection(item), timeout=5)
        assert answer.status_code == 202
    assert sorted(queued(client)) == [
        ("worker.jobs.sync_group", [TENANT, GROUP_ID]),
        ("worker.jobs.sync_user", [TENANT, USER_ID]),
    ]
    assert session.get(base + "/readyz", timeout=5).status_code == 200

    # two workers; whichever answers /metrics reports the sum over both
    for _ in range(4):
        text = session.get(base + "/metrics", timeout=5).text
        assert metric(text, "skolsynk_notifications_accepted_total") == 2
    client.close()

    # the log is JSON lines, without the clientState
    lines = [line for line in process.log_path.read_text().splitlines() if line.strip()]
    assert lines
    for line in lines:
        assert isinstance(json.loads(line), dict)
    assert subs.users.client_state not in process.log_path.read_text()
