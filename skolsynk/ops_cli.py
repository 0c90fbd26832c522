"""``skolsynk status`` and ``skolsynk audit``: how each tenant is doing, and what was written."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from typing import Any

from common.errors import NeedsAttention
from common.state.dispatch import Dispatcher
from common.state.subscriptions import SubscriptionStore
from skolsynk.context import add_tenant_argument, services
from skolsynk.output import cell, duration, table, to_csv, to_json

#: the window of ``status``'s recent writes, beside the last run's
RECENT_WRITES_WINDOW = timedelta(hours=24)

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
    "members",
    "detail",
    "run_id",
)


def register(subparsers: Any) -> None:
    status = subparsers.add_parser(
        "status",
        help="last runs, held removals, subscriptions and queues per tenant",
        description="Per tenant: the last full reconcile and its outcome, the portal writes of "
        "that run and of the last 24 hours, removals held for approval, when the Graph "
        "subscriptions expire; then the depth of each queue.",
    )
    status.add_argument("tenant", metavar="TENANT", nargs="?", help="one tenant (default: all)")
    status.add_argument("--format", choices=("text", "json"), default="text")
    status.set_defaults(handler=_status)

    audit = subparsers.add_parser(
        "audit",
        help="export the audit log of a tenant",
        description="Every change Skolsynk wrote to (or held from, or failed to write to) the "
        "tenant's portal, oldest first: when, what, who, the outcome and why. Kept six months.",
    )
    add_tenant_argument(audit)
    audit.add_argument(
        "--since",
        metavar="WHEN",
        help="ISO date or time (2026-11-01, 2026-11-01T08:00) or an age such as 7d or 12h",
    )
    audit.add_argument("--format", choices=("text", "json", "csv"), default="text")
    audit.add_argument(
        "--limit", type=positive_count, metavar="N", help="only the newest N entries (in order)"
    )
    audit.set_defaults(handler=_audit)


def positive_count(text: str) -> int:
    """An argument that must be a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {value})")
    return value


def recent_writes(tenant_id: str) -> int:
    """How many changes were written to the tenant's portal in the last 24 hours."""
    since = datetime.now(UTC) - RECENT_WRITES_WINDOW
    return services().audit.count(tenant_id, since=since, outcome="applied")


def tenant_status(tenant_id: str) -> dict[str, Any]:
    svc = services()
    tenant = svc.registry.get(tenant_id)
    last = svc.runs.last(tenant.id)
    live = svc.runs.last(tenant.id, kind="live")
    subscriptions = SubscriptionStore(svc.redis, svc.config.secret_key).for_tenant(tenant.id)
    return {
        "id": tenant.id,
        "name": tenant.name,
        "environment": tenant.environment,
        "enabled": tenant.enabled,
        "last_reconcile": last.to_dict() if last else None,
        "last_live_change": live.to_dict() if live else None,
        "held": len(svc.safety.held(tenant.id)),
        "writes_last_24h": recent_writes(tenant.id),
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
    return duration((soonest - datetime.now(UTC)).total_seconds())


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
                item["writes_last_24h"],
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
                "LAST 24 H",
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
        if last and last.get("duplicates"):
            print(
                f"{item['name']}: {last['duplicates']} duplicate portal objects "
                f"(see `skolsynk preview {item['id']}`)"
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


def members_cell(entry: dict[str, Any]) -> str:
    """An entry's members on one line: ``e-mail (id)``, separated by semicolons."""
    return "; ".join(
        f"{m['email']} ({m['id']})" if m.get("email") else m.get("id") or m.get("portal_id", "")
        for m in entry["members"]
    )


def _audit_row(entry: dict[str, Any]) -> list[str]:
    """One CSV row: every cell on one line (changes as compact JSON, members as a list)."""
    cells = {c: cell(entry.get(c, "")) for c in AUDIT_COLUMNS}
    return [*(cells | {"members": members_cell(entry)}).values()]


def _who(entry: dict[str, Any]) -> str:
    if entry["member_count"]:
        return f"{entry['label']} ({entry['member_count']} members)"
    return str(entry["label"])


def _audit(args: argparse.Namespace) -> int:
    svc = services()
    tenant = svc.registry.get(args.tenant)
    since = parse_since(args.since) if args.since else None
    entries = list(svc.audit.entries(tenant.id, since=since, limit=args.limit))
    if args.format == "json":
        print(to_json(entries))
    elif args.format == "csv":
        print(to_csv(AUDIT_COLUMNS, (_audit_row(e) for e in entries)), end="")
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
                    (e["at"], e["kind"], _who(e), e["outcome"], e["why"], e["reason"])
                    for e in entries
                ),
            )
        )
    return 0
