"""``skolsynk subscriptions ensure|renew|list TENANT``: Graph change notifications for a tenant."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from common.state.dispatch import Dispatcher
from common.state.subscription_lifecycle import ensure_subscriptions, renew_subscriptions
from common.state.subscriptions import SubscriptionStore
from skolsynk.context import add_tenant_actions, services
from skolsynk.output import duration, table, to_json


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "subscriptions",
        help="create, renew and list the Graph subscriptions of a tenant",
        description="Graph change notifications: one /users and one /groups subscription per "
        "tenant, delivered to SKOLSYNK_PUBLIC_URL.",
    )
    actions = add_tenant_actions(
        parser,
        (
            ("ensure", "create the /users and /groups subscriptions where missing"),
            ("renew", "renew those expiring within three days; recreate lost ones and reconcile"),
            ("list", "list the tenant's subscriptions, as Skolsynk and Graph know them"),
        ),
        handler=_run,
        dest="subscriptions_command",
        action_key="subscriptions_action",
    )
    for sub in actions.values():
        sub.add_argument("--format", choices=("text", "json"), default="text")


def _run(args: argparse.Namespace) -> int:
    svc = services()
    tenant = svc.registry.get(args.tenant)
    graph = svc.graph(tenant.id)
    store = SubscriptionStore(svc.redis, svc.config.secret_key)
    if args.subscriptions_action == "ensure":
        created = ensure_subscriptions(graph, store, tenant.id, svc.config.require_public_url())
        print(
            f"Created {len(created)} subscriptions for {tenant.name}"
            + (": " + ", ".join(s.resource for s in created) if created else " (all were there).")
        )
    elif args.subscriptions_action == "renew":
        report = renew_subscriptions(graph, store, tenant.id, Dispatcher(svc.redis))
        print(
            f"Renewed {len(report.renewed)}, recreated {len(report.recreated)} subscriptions "
            f"for {tenant.name}."
            + (" A reconcile is queued to catch up." if report.reconcile_queued else "")
        )
    listed = {str(s.get("id", "")).lower() for s in graph.list_subscriptions()}
    records = sorted(store.for_tenant(tenant.id), key=lambda s: s.resource)
    rows = [
        {
            "id": s.id,
            "resource": s.resource,
            "expires_at": s.expires_at.isoformat(timespec="seconds"),
            "days_left": round((s.expires_at - datetime.now(UTC)).total_seconds() / 86400, 1),
            "at_graph": s.id.lower() in listed,
        }
        for s in records
    ]
    if args.format == "json":
        print(to_json(rows))
    elif args.subscriptions_action == "list" or rows:
        if not rows:
            print(
                f"{tenant.name} has no subscriptions. "
                "Create them with `skolsynk subscriptions ensure`."
            )
        else:
            print(
                table(
                    ("RESOURCE", "EXPIRES", "EXPIRES IN", "AT GRAPH", "ID"),
                    (
                        (
                            r["resource"],
                            r["expires_at"],
                            duration(
                                (
                                    datetime.fromisoformat(str(r["expires_at"])) - datetime.now(UTC)
                                ).total_seconds()
                            ),
                            "yes" if r["at_graph"] else "NO (renew recreates it)",
                            r["id"],
                        )
                        for r in rows
                    ),
                )
            )
    return 0
