"""``skolsynk subscriptions ensure|renew|list`` against the sandbox and a running listener."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests.fixtures.live import LiveWorld


def cli(world: LiveWorld, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "skolsynk.cli", *args],
        env={**os.environ, **world.stack.env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_list_renew_and_ensure_show_and_repair_the_tenants_subscriptions(live_world) -> None:
    world: LiveWorld = live_world()

    listed = json.loads(
        cli(world, "subscriptions", "list", world.tenant_id, "--format", "json").stdout
    )
    assert sorted(s["resource"] for s in listed) == ["/groups", "/users"]
    assert all(s["at_graph"] and s["days_left"] > 25 for s in listed)

    graph = world.services.graph(world.tenant_id)
    gone = next(s for s in listed if s["resource"] == "/groups")
    graph.delete_subscription(gone["id"])
    shown = cli(world, "subscriptions", "list", world.tenant_id)
    assert "NO (renew recreates it)" in shown.stdout

    renewed = cli(world, "subscriptions", "renew", world.tenant_id)
    assert renewed.returncode == 0, renewed.stderr
    assert "recreated 1" in renewed.stdout
    assert "A reconcile is queued" in renewed.stdout

    ensured = cli(world, "subscriptions", "ensure", world.tenant_id)
    assert ensured.returncode == 0, ensured.stderr
    assert "Created 0 subscriptions" in ensured.stdout
    assert {s["resource"].lower() for s in graph.list_subscriptions()} == {"/users", "/groups"}


@pytest.mark.slow
def test_list_and_status_say_how_long_subscriptions_last_in_the_same_words(live_world) -> None:
    world: LiveWorld = live_world()
    listed = cli(world, "subscriptions", "list", world.tenant_id).stdout
    status = cli(world, "status", world.tenant_id).stdout
    (expires_in,) = set(re.findall(r"\b\d+ d \d+ h\b", status))
    assert expires_in.startswith(("28 d", "29 d")), status
    assert listed.count(expires_in) == 2, listed  # /users and /groups, as status words it
    assert not re.search(r"\b\d+\.\d\b", listed), listed  # no "29.0" days
