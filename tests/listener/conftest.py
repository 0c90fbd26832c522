"""Fixtures for the listener: a test config on the private Redis, the app, its client, and
subscriptions registered the way ``ensure_subscriptions`` registers them."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
import requests
from flask import Flask
from flask.testing import FlaskClient
from rq import Queue
from rq.serializers import JSONSerializer

from common.config import Config, Secret
from common.state.dispatch import LIVE_QUEUE, RECONCILE_QUEUE, Dispatcher
from common.state.subscriptions import SubscriptionStore
from listener.app import create_app
from tests.conftest import ROOT
from tests.fixtures.processes import ServiceProcess, free_port
from tests.listener.graph_payloads import OTHER_TENANT, TENANT, Sub

SECRET_KEY = "listener-tests-secret-key-0123456789"
PUBLIC_URL = "https://skolsynk.example.test"


def make_config(redis_url: str) -> Config:
    return Config(
        redis_url=redis_url,
        client_id="00000000-0000-4000-8000-00000000c11e",
        client_secret=Secret("not-used-by-the-listener"),
        secret_key=Secret(SECRET_KEY),
        public_url=PUBLIC_URL,
    )


@dataclass(frozen=True)
class Registered:
    """The subscriptions registered for a test: the tenant's two, and another tenant's."""

    users: Sub
    groups: Sub
    other_tenant_users: Sub


def register(store: SubscriptionStore) -> Registered:
    expires = datetime.now(UTC) + timedelta(days=20)
    subs = Registered(
        users=Sub("7e0c2a44-1b3d-4c5e-8f6a-9b0c1d2e3f40", TENANT, "/users", "users-state-Qx7"),
        groups=Sub("a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d", TENANT, "/groups", "groups-state-P2m"),
        other_tenant_users=Sub(
            "5f4e3d2c-1b0a-4987-a6b5-c4d3e2f1a0b9", OTHER_TENANT, "/users", "other-state-L9k"
        ),
    )
    for sub in (subs.users, subs.groups, subs.other_tenant_users):
        store.add(
            sub.id,
            tenant_id=sub.tenant_id,
            resource=sub.resource,
            expires_at=expires,
            notification_url=PUBLIC_URL + "/graph/notifications",
            lifecycle_url=PUBLIC_URL + "/graph/lifecycle",
            client_state=sub.client_state,
        )
    return subs


@pytest.fixture
def config(redis_url: str) -> Config:
    return make_config(redis_url)


@pytest.fixture
def app(config: Config) -> Flask:
    return create_app(config)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def store(redis_client: redis.Redis) -> SubscriptionStore:
    return SubscriptionStore(redis_client, Secret(SECRET_KEY))


@pytest.fixture
def subs(store: SubscriptionStore) -> Registered:
    return register(store)


@pytest.fixture
def dispatcher(redis_client: redis.Redis) -> Dispatcher:
    return Dispatcher(redis_client)


def queued(client: redis.Redis, queue_name: str = LIVE_QUEUE) -> list[tuple[str, list[str]]]:
    """(function name, args) of every job waiting in a queue, read with the JSON serializer."""
    queue = Queue(queue_name, connection=client, serializer=JSONSerializer)
    return [(job.func_name, list(job.args)) for job in queue.get_jobs()]


def renewals(client: redis.Redis) -> list[tuple[str, list[str]]]:
    return [job for job in queued(client, RECONCILE_QUEUE) if job[0].endswith("subscriptions")]


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus text exposition (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)", line)
        if not match or match[1] != name:
            continue
        found = ",".join(sorted((match[2] or "").split(","))) if match[2] else ""
        if found == wanted:
            return float(match[3])
    return 0.0


@pytest.fixture
def served(redis_url: str, tmp_path: Path) -> Iterator[tuple[str, ServiceProcess]]:
    port = free_port()
    metrics_dir = tmp_path / "metrics"
    process = ServiceProcess(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "deploy/gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{port}",
            "listener.app:create_app()",
        ],
        log_path=tmp_path / "gunicorn.log",
        env={
            "REDIS_URL": redis_url,
            "SKOLSYNK_CLIENT_ID": "00000000-0000-4000-8000-00000000c11e",
            "SKOLSYNK_CLIENT_SECRET": "not-used-by-the-listener",
            "SKOLSYNK_SECRET_KEY": SECRET_KEY,
            "SKOLSYNK_PUBLIC_URL": PUBLIC_URL,
            "WEB_CONCURRENCY": "2",
            "GUNICORN_THREADS": "2",
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        },
        cwd=ROOT,
    ).start()
    base = f"http://127.0.0.1:{port}"
    try:
        process.wait_ready(lambda: requests.get(base + "/healthz", timeout=1).ok)
        yield base, process
    finally:
        process.stop()
