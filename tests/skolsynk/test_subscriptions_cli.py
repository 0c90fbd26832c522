"""``skolsynk subscriptions ensure|renew|list`` against the sandbox and a running listener."""

from __future__ import annotations

import json
import os
import subprocess
import sys

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
