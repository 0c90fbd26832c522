"""``skolsynk status`` and ``skolsynk audit``: how each tenant is doing, and what was written."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from typing import Any

from common.errors import NeedsAttention, UnknownTenant
from common.state.dispatch import Dispatcher
from common.state.registry import RemovedTenant, Tenant
from common.state.subscriptions import SubscriptionStore
from skolsynk.context import add_tenant_argument, services
from skolsynk.output import table, to_csv, to_json

AUDIT_COLUMNS = (
    "at",
    "tenant",
    "kind",
    "object_id",
    "portal_id",
    "label",
    "outcome",
    "why",
    "reason",
    "changes",
    "detail",
    "run_id",
)


def register(subparsers: Any) -> None:
    status = subparsers.add_parser(
        "status", help="last runs, held removals, subscriptions and queues per tenant"
    )
    status.add_argument("tenant", metavar="TENANT", nargs="?", help="one tenant (default: all)")
    status.add_argument("--format", choices=("text", "json"), default="text")
    status.set_defaults(handler=_status)

    audit = subparsers.add_parser("audit", help="export the audit log of a tenant")
    add_tenant_argument(audit)
    audit.add_argument(
        "--since",
        metavar="WHEN",
        help="ISO date or time (2026-11-01, 2026-11-01T08:00) or an age such as 7d or 12h",
    )
    audit.add_argument("--format", choices=("text", "json", "csv"), default="text")
    audit.add_argument("--limit", type=int, help="at most this many entries")
    audit.set_defaults(handler=_audit)


def tenant_status(tenant_id: str) -> dict[str, Any]:
    svc = services()
    tenant = svc.registry.get(tenant_id)
    last = svc.runs.last(tenant.id, environment=tenant.environment)
    if last is None and (older := svc.runs.last(tenant.id)) and not older.environment:
        last = older  # kept before runs recorded their environment
    live = svc.runs.last(tenant.id, kind="live")
    subscriptions = SubscriptionStore(svc.redis, svc.config.secret_key).for_tenant(tenant.id)
    return {
        "id": tenant.id,
        "name": tenant.name,
        "environment": tenant.environment,
        "enabled": tenant.enabled,
        "last_reconcile": last.to_dict() if last else None,
        "last_live_change": live.to_dict() if live else None,
        "environments": {
            env: {
                "url": portal.url,
                "last_reconcile": (run := svc.runs.last(tenant.id, environment=env))
                and run.to_dict(),
            }
            for env, portal in tenant.portals.items()
        },
        "held": len(svc.safety.held(tenant.id)),
        "subscriptions": [
            {
                "id": s.id,
                "resource": s.resource,
                "expires_at": s.expires_at.isoformat(timespec="seconds"),
                "needs_reauthorization": s.reauthorize,
            }
            for s in sorted(subscriptions, key=lambda s: s.resource)
        ],
    }


def _expiry(item: dict[str, Any]) -> str:
    """The earliest subscription expiry of a tenant, as days and hours from now."""
    if not item["subscriptions"]:
        return "none"
    soonest = min(datetime.fromisoformat(s["expires_at"]) for s in item["subscriptions"])
    left = soonest - datetime.now(UTC)
    if left.total_seconds() <= 0:
        return "expired"
    return f"{left.days} d {left.seconds // 3600} h"


def _status(args: argparse.Namespace) -> int:
    svc = services()
    tenants = [svc.registry.get(args.tenant)] if args.tenant else svc.registry.all()
    data = [tenant_status(t.id) for t in tenants]
    queues = Dispatcher(svc.redis).queue_depths()
    if args.format == "json":
        print(
            to_json(
                {"tenants": data, "queues": queues}
                if not args.tenant
                else data[0] | {"queues": queues}
            )
        )
        return 0
    if not data:
        print("No tenants are registered. Add one with `skolsynk tenant add`.")
        return 0
    rows = []
    for item in data:
        last = item["last_reconcile"]
        rows.append(
            (
                item["name"],
                item["environment"] + ("" if item["enabled"] else " (off)"),
                last["finished_at"] if last else "never",
                last["outcome"] if last else "-",
                f"{last['microsoft_users']}/{last['microsoft_classes']}" if last else "-",
                sum(last["applied"].values()) if last else "-",
                item["held"],
                _expiry(item),
            )
        )
    print(
        table(
            (
                "TENANT",
                "ENV",
                "LAST RECONCILE",
                "OUTCOME",
                "USERS/CLASSES",
                "WRITES",
                "HELD",
                "SUBSCRIPTIONS EXPIRE IN",
            ),
            rows,
        )
    )
    print("Queues: " + ", ".join(f"{name} {depth}" for name, depth in sorted(queues.items())))
    for item in data:
        last = item["last_reconcile"]
        if last and last["message"]:
            print(f"{item['name']}: {last['message']}")
        if len(item["environments"]) > 1:
            for env, portal in item["environments"].items():
                run = portal["last_reconcile"]
                when = f"{run['finished_at']} {run['outcome']}" if run else "never"
                current = " (current)" if env == item["environment"] else ""
                print(
                    f"{item['name']}: {env} portal{current} {portal['url']}, last reconcile {when}"
                )
    return 0


def parse_since(text: str) -> datetime:
    """An ISO date/time or an age (``30m``, ``12h``, ``7d``) as a UTC time."""
    units = {"m": "minutes", "h": "hours", "d": "days"}
    if text[-1:] in units and text[:-1].isdigit():
        return datetime.now(UTC) - timedelta(**{units[text[-1]]: int(text[:-1])})
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise NeedsAttention(
            f"--since {text!r} is neither a date (2026-11-01), a time (2026-11-01T08:00) "
            "nor an age (7d, 12h, 30m)."
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _audit(args: argparse.Namespace) -> int:
    svc = services()
    try:
        tenant: Tenant | RemovedTenant = svc.registry.get(args.tenant)
    except UnknownTenant:
        # a removed tenant's audit log is kept (and read) for its six months
        gone = svc.registry.removed(args.tenant)
        if gone is None:
            raise
        tenant = gone
    since = parse_since(args.since) if args.since else None
    entries = list(svc.audit.entries(tenant.id, since=since, limit=args.limit))
    if args.format == "json":
        print(to_json(entries))
    elif args.format == "csv":
        print(
            to_csv(
                AUDIT_COLUMNS,
                (
                    [to_json(e[c]) if c == "changes" else e.get(c, "") for c in AUDIT_COLUMNS]
                    for e in entries
                ),
            ),
            end="",
        )
    else:
        if not entries:
            print(
                f"No audit entries for {tenant.name}" + (f" since {args.since}." if since else ".")
            )
            return 0
        print(
            table(
                ("AT", "WHAT", "WHO", "OUTCOME", "WHY", "REASON"),
                (
                    (e["at"], e["kind"], e["label"], e["outcome"], e["why"], e["reason"])
                    for e in entries
                ),
            )
        )
    return 0
