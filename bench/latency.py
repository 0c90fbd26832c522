"""Time from a change in Microsoft 365 to the change visible in the portal, through change
notifications, the listener under gunicorn and RQ workers (the sandbox delivers at once).

1. Latency: ``--changes`` renames (default 500) of distinct users through the sandbox's Graph
   API at ``--rate`` per second; a poller reads the portal every 50 ms and notes when each new
   name shows. Prints p50, p95 and max. Target (DESIGN §7): p50 under 1 s, p95 under 3 s.
2. Burst: ``--burst-objects`` users, each changed ``--burst-changes`` times back to back, one
   user after the other; prints Graph reads (sync jobs that read an object, one ``$batch`` each)
   per distinct changed object. Target: at most 1.1.

    python bench/latency.py
    python bench/latency.py --changes 100 --rate 5    # a quick look
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common.config import Secret, load_config
from common.graph import sds
from common.state.registry import PortalEnvironment, Tenant
from common.state.subscription_lifecycle import ensure_subscriptions
from common.state.subscriptions import SubscriptionStore
from common.sync import engine
from sandbox.graph.admin_client import GraphAdmin
from skolsynk.stack import Stack

POLL_SECONDS = 0.05


class PortalWatcher(threading.Thread):
    """Reads every portal user every 50 ms; notes when each awaited family name appears."""

    def __init__(self, scim_url: str, token: str) -> None:
        super().__init__(daemon=True)
        self.scim_url = scim_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.awaited: dict[str, tuple[str, float]] = {}  # entra id -> (family name, sent at)
        self.seen: dict[str, float] = {}
        self.lock = threading.Lock()
        self.running = True

    def expect(self, entra_id: str, family: str, sent_at: float) -> None:
        with self.lock:
            self.awaited[entra_id] = (family, sent_at)

    def run(self) -> None:
        while self.running:
            users = self._all_users()
            now = time.monotonic()
            with self.lock:
                for user in users:
                    key = user.get("externalId")
                    want = self.awaited.get(key) if key else None
                    family = (user.get("name") or {}).get("familyName")
                    if want and family == want[0]:
                        self.seen[key] = now - want[1]
                        del self.awaited[key]
            time.sleep(POLL_SECONDS)

    def _all_users(self) -> list[dict[str, Any]]:
        users: list[dict[str, Any]] = []
        start = 1
        while True:
            page = self.session.get(
                f"{self.scim_url}/Users",
                params={"startIndex": start, "count": 1000, "attributes": "externalId,name"},
                timeout=10,
            ).json()
            users += page.get("Resources", [])
            start += len(page.get("Resources", []))
            if not page.get("Resources") or start > page.get("totalResults", 0):
                return users

    def wait_all(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if not self.awaited:
                    return
            time.sleep(0.1)


def batch_calls(graph: dict[str, Any], tenant_id: str) -> int:
    """``$batch`` calls the sandbox answered for the tenant (each sync job reads with one)."""
    counters = requests.get(
        f"{graph['admin_url']}/counters",
        headers={"Authorization": f"Bearer {graph['admin_token']}"},
        verify=graph["ca_bundle"],
        timeout=10,
    ).json()
    tenant = counters.get("tenants", {}).get(tenant_id, {})
    return sum(
        n
        for key, statuses in tenant.get("requests", {}).items()
        if "$batch" in key
        for n in (statuses.values() if isinstance(statuses, dict) else [statuses])
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1200)
    parser.add_argument("--changes", type=int, default=500)
    parser.add_argument("--rate", type=float, default=10.0, help="changes per second")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--burst-objects", type=int, default=50)
    parser.add_argument("--burst-changes", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="skolsynk-latency-") as tmp, Stack(Path(tmp)) as stack:
        stack.ensure_redis(private=True)
        graph_info = stack.start_graph("--generate", str(args.users), "--seed", "9")
        portal_info = stack.start_portal()
        listener = stack.start_listener()
        stack.start_workers(args.workers)
        services = __import__("common.sync.services", fromlist=["build_services"]).build_services(
            load_config(stack.env())
        )
        tenant_info = graph_info["tenants"][0]
        org = portal_info["organisations"][0]
        services.registry.add(
            Tenant(
                id=tenant_info["id"],
                name="Latency",
                portals={"test": PortalEnvironment(org["scim_url"], Secret(org["token"]))},
            )
        )
        engine.reconcile_tenant(services, tenant_info["id"])
        ensure_subscriptions(
            services.graph(tenant_info["id"]),
            SubscriptionStore(services.redis, services.config.secret_key),
            tenant_info["id"],
            listener,
        )
        graph = GraphAdmin(graph_info, tenant_info["id"], tenant_info["domain"])
        people = [u for u in graph.users() if u.get(sds.OBJECT_TYPE) in ("Student", "Teacher")]
        watcher = PortalWatcher(org["scim_url"], org["token"])
        watcher.start()

        print(
            f"latency: {args.changes} renames at {args.rate:.0f}/s, {args.workers} workers, "
            f"{len(people)} students and teachers"
        )
        interval = 1.0 / args.rate
        started = time.monotonic()
        for i in range(args.changes):
            user = people[i % len(people)]
            family = f"Bänk{i}"
            sent = time.monotonic()
            graph.rename_user(user["id"], user["givenName"], family)
            watcher.expect(user["id"], family, sent)
            pause = started + (i + 1) * interval - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        watcher.wait_all(timeout=60)
        latencies = sorted(watcher.seen.values())
        lost = args.changes - len(latencies)
        if latencies:
            p50 = statistics.median(latencies)
            p95 = latencies[int(0.95 * (len(latencies) - 1))]
            print(
                f"  arrived {len(latencies)}/{args.changes}: p50 {p50:.3f} s, p95 {p95:.3f} s, "
                f"max {latencies[-1]:.3f} s, min {latencies[0]:.3f} s; not arrived: {lost}"
            )
        time.sleep(2)

        print(
            f"burst: {args.burst_objects} users changed {args.burst_changes} times each, "
            "back to back"
        )
        before = batch_calls(graph_info, tenant_info["id"])
        targets = people[: args.burst_objects]
        # each object gets its changes back to back (as when a register run touches a person
        # several times), one object after the other
        for user in targets:
            for round_ in range(args.burst_changes):
                family = f"Skur{round_}"
                graph.rename_user(user["id"], user["givenName"], family)
            watcher.expect(user["id"], family, time.monotonic())
        watcher.wait_all(timeout=60)
        time.sleep(3)  # let any trailing run finish
        reads = batch_calls(graph_info, tenant_info["id"]) - before
        print(
            f"  Graph reads (one $batch per job): {reads} for {len(targets)} objects = "
            f"{reads / len(targets):.2f} per distinct object"
        )
        watcher.running = False


if __name__ == "__main__":
    main()
