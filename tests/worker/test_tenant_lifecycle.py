"""Disabling and removing a tenant while the real-time path runs: the sandbox delivers change
notifications to the listener under gunicorn and RQ workers apply them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import pytest
import requests

from common.state.subscriptions import VERIFICATION_CACHE_SECONDS
from tests.fixtures.live import LiveWorld, wait_for
from tests.listener.graph_payloads import Sub, change, collection


def skolsynk(world: LiveWorld, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "skolsynk.cli", *args],
        env={**os.environ, **world.stack.env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def worker_logs(world: LiveWorld) -> str:
    return "".join(w.log_path.read_text() for w in world.stack.workers)


def a_student(world: LiveWorld) -> dict[str, Any]:
    graph = world.microsoft.graph
    student = graph.create_student("Ebba", "Lind", school_id="1", grade="8")
    world.wait_user(student["id"], lambda u: u["active"], "the new student is in the portal")
    return student


@pytest.mark.slow
def test_a_disabled_tenant_gets_no_real_time_writes_until_it_is_enabled(live_world) -> None:
    world: LiveWorld = live_world()
    student = a_student(world)

    off = skolsynk(world, "tenant", "set", world.tenant_id, "--disable")
    assert off.returncode == 0, off.stderr
    world.microsoft.graph.rename_user(student["id"], "Ebba", "Lindqvist")
    wait_for(
        lambda: '"change dropped"' in worker_logs(world) and world.tenant_id in worker_logs(world),
        what="a worker dropped the rename of the disabled tenant",
    )
    user = world.portal_user(student["id"])
    assert user is not None and user["familyName"] == "Lind"

    on = skolsynk(world, "tenant", "set", world.tenant_id, "--enable")
    assert on.returncode == 0, on.stderr
    assert "a full reconcile against" in on.stdout
    # the queued reconcile brings what was dropped meanwhile
    world.wait_user(
        student["id"], lambda u: u["familyName"] == "Lindqvist", "the rename arrives after all"
    )


@pytest.mark.slow
def test_removing_a_tenant_deletes_its_subscriptions_and_its_notifications_queue_nothing(
    live_world,
) -> None:
    world: LiveWorld = live_world()
    graph = world.services.graph(world.tenant_id)
    subscriptions = graph.list_subscriptions()
    assert len(subscriptions) == 2
    # the first sync linked the tenant's people to their portal accounts
    assert world.services.links.all(world.tenant_id)

    removed = skolsynk(world, "tenant", "remove", world.tenant_id)
    assert removed.returncode == 0, removed.stderr
    assert "Deleted 2 Graph subscriptions" in removed.stdout
    assert graph.list_subscriptions() == []
    assert world.services.links.all(world.tenant_id) == {}

    # a delivery Graph had under way for a deleted subscription: answered, never queued
    time.sleep(VERIFICATION_CACHE_SECONDS + 0.5)  # the listener's verification cache ages out
    users = next(s for s in subscriptions if s["resource"] == "/users")
    # (its clientState is Graph's and ours only as a digest: the unit tests of the store show
    # the right one is counted as tenant_removed; here, that any is answered and not queued)
    sub = Sub(users["id"], world.tenant_id, "/users", "whatever-it-was")
    before = world.stack.metrics()
    answer = requests.post(
        f"{world.stack.listener_url}/graph/notifications",
        json=collection(change(sub, "00000000-0000-4000-8000-000000000001")),
        timeout=5,
    )
    assert answer.status_code == 202
    after = world.stack.metrics()
    assert _rejected(after) == _rejected(before) + 1
    live_jobs = world.services.redis.llen("rq:queue:live")
    assert live_jobs == 0


def _rejected(metrics: str) -> float:
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith("skolsynk_notifications_rejected_total{") and (
            'endpoint="notifications"' in line
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total
