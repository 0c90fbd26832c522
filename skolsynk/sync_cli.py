"""``skolsynk preview``, ``reconcile`` and ``held``: what a sync will do, doing it, approving."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from common.model import Action, ActionKind
from common.state.runs import RunReport
from common.sync import engine
from common.sync.plan_csv import plan_csv
from skolsynk.context import add_tenant_actions, add_tenant_argument, services
from skolsynk.output import ProgressBar, table, to_json

#: how people read each kind of action, in the order the preview lists them
KIND_TITLES: dict[ActionKind, str] = {
    ActionKind.CREATE_USER: "users to create",
    ActionKind.ADOPT_USER: "existing portal accounts to adopt",
    ActionKind.UPDATE_USER: "users to update",
    ActionKind.REACTIVATE_USER: "users to reactivate",
    ActionKind.DEACTIVATE_USER: "users to deactivate",
    ActionKind.DELETE_USER: "users to delete",
    ActionKind.CREATE_GROUP: "classes to create",
    ActionKind.UPDATE_GROUP: "classes to update",
    ActionKind.DELETE_GROUP: "classes to delete",
    ActionKind.ADD_MEMBERS: "classes gaining members",
    ActionKind.REMOVE_MEMBERS: "classes losing members",
}
PREVIEW_LIMIT_PER_KIND = 20


def register(subparsers: Any) -> None:
    preview = subparsers.add_parser(
        "preview",
        help="show what a sync would do, writing nothing",
        description="Read Microsoft 365 and the portal and show the exact plan, the classes that "
        "would sync and collisions (portal accounts that would get a twin).",
    )
    add_tenant_argument(preview)
    preview.add_argument("--format", choices=("text", "json", "csv"), default="text")
    preview.add_argument(
        "--all",
        action="store_true",
        help=f"list every action (text shows {PREVIEW_LIMIT_PER_KIND} per kind)",
    )
    preview.set_defaults(handler=_preview)

    reconcile = subparsers.add_parser(
        "reconcile",
        help="make the portal match Microsoft 365 now",
        description="Run a full reconcile of one tenant.",
    )
    add_tenant_argument(reconcile)
    reconcile.add_argument("--dry-run", action="store_true", help="plan only; write nothing")
    reconcile.add_argument("--format", choices=("text", "json"), default="text")
    reconcile.set_defaults(handler=_reconcile)

    held = subparsers.add_parser(
        "held", help="list, approve or reject removals held by the mass-change guard"
    )
    actions = add_tenant_actions(
        held,
        (
            ("list", "list held removals"),
            ("approve", "apply held removals (all, or the ids given)"),
            ("reject", "drop held removals (all, or the ids given)"),
        ),
        handler=_held,
        dest="held_command",
        action_key="held_action",
    )
    actions["list"].add_argument("--format", choices=("text", "json"), default="text")
    for name in ("approve", "reject"):
        actions[name].add_argument(
            "ids", metavar="IDS", nargs="*", help="held action ids (default: all)"
        )


# --- preview ------------------------------------------------------------------------------


def _preview(args: argparse.Namespace) -> int:
    progress = ProgressBar()
    view = engine.preview(services(), args.tenant, status=progress.status)
    if args.format == "json":
        print(to_json(preview_data(view)))
    elif args.format == "csv":
        print(preview_csv(view), end="")
    else:
        print(preview_text(view, limit=None if args.all else PREVIEW_LIMIT_PER_KIND))
    return 0


def _action_data(action: Action) -> dict[str, Any]:
    return {
        "id": action.key,
        "kind": action.kind.value,
        "object_id": action.object_id,
        "portal_id": action.portal_id,
        "label": action.label,
        "reason": action.reason,
        "changes": {k: list(v) if isinstance(v, tuple) else v for k, v in action.changes.items()},
        "members": len(action.member_ids) + len(action.portal_member_ids),
    }


def preview_data(view: engine.Preview) -> dict[str, Any]:
    plan = view.plan
    return {
        "tenant": {
            "id": view.tenant.id,
            "name": view.tenant.name,
            "environment": view.tenant.environment,
        },
        "microsoft": {
            "users_in_scope": len(view.microsoft.users),
            "classes_in_scope": len(view.microsoft.classes),
        },
        "portal": {"users": len(view.portal.users), "groups": len(view.portal.groups)},
        "counts": plan.counts(),
        "removals_skipped_because": view.gate,
        "removals_would_be_held": view.would_hold,
        "classes": [{"id": cid, "name": name} for cid, name in plan.classes_in_scope],
        "collisions": [
            {
                "microsoft_id": c.object_id,
                "microsoft_email": c.microsoft_email,
                "portal_id": c.portal_id,
                "portal_email": c.portal_email,
                "name": c.display_name,
                "schools": list(c.school_ids),
            }
            for c in plan.collisions
        ],
        "actions": [_action_data(a) for a in plan.actions],
    }


def preview_csv(view: engine.Preview) -> str:
    return plan_csv(view.plan)


def preview_text(view: engine.Preview, *, limit: int | None) -> str:
    plan = view.plan
    t = view.tenant
    out = [
        f"Preview for {t.name} ({t.id}), {t.environment} portal {t.portal().url}",
        f"Microsoft 365: {len(view.microsoft.users)} students and teachers, "
        f"{len(view.microsoft.classes)} classes in scope.",
        f"Portal: {len(view.portal.users)} users, {len(view.portal.groups)} groups.",
        "",
    ]
    counts = plan.counts()
    summary = [(title, counts[k.value]) for k, title in KIND_TITLES.items() if counts[k.value]]
    if summary:
        out.append(table(("WHAT", "HOW MANY"), summary))
    else:
        out.append("Nothing to do: the portal matches Microsoft 365.")
    if view.gate:
        out += ["", f"Removals would be SKIPPED: {view.gate}."]
    elif view.would_hold:
        out += [
            "",
            f"{len(plan.removals)} removals would be HELD for approval (mass-change guard).",
        ]
    out += ["", f"Classes that will sync ({len(plan.classes_in_scope)}):"]
    shown = plan.classes_in_scope if limit is None else plan.classes_in_scope[: limit * 5]
    out += [f"  {name}" for _, name in shown]
    if len(shown) < len(plan.classes_in_scope):
        out.append(
            f"  … and {len(plan.classes_in_scope) - len(shown)} more (--all lists every one)"
        )
    if plan.collisions:
        out += [
            "",
            f"COLLISIONS ({len(plan.collisions)}): portal accounts with the same name and school "
            "but another e-mail. The sync would create a second account; change the e-mail in "
            "the portal "
            "first if it is the same person.",
        ]
        out.append(
            table(
                ("NAME", "MICROSOFT E-MAIL", "PORTAL E-MAIL", "PORTAL ID"),
                (
                    (c.display_name, c.microsoft_email, c.portal_email or "-", c.portal_id)
                    for c in plan.collisions
                ),
            )
        )
    for kind, title in KIND_TITLES.items():
        actions = [a for a in plan.actions if a.kind is kind]
        if not actions:
            continue
        out += ["", f"{title.capitalize()} ({len(actions)}):"]
        for action in actions if limit is None else actions[:limit]:
            out.append(f"  {action.label}: {action.reason}")
        if limit is not None and len(actions) > limit:
            out.append(f"  … and {len(actions) - limit} more (--all lists every one)")
    return "\n".join(out)


# --- reconcile ----------------------------------------------------------------------------


def _reconcile(args: argparse.Namespace) -> int:
    progress = ProgressBar()
    try:
        report = engine.reconcile_tenant(
            services(), args.tenant, dry_run=args.dry_run, status=progress.status, progress=progress
        )
    finally:
        progress.finish()
    if args.format == "json":
        print(to_json(report.to_dict()))
    else:
        print(report_text(report))
    return 0 if report.outcome in ("ok", "preview", "held", "gated") else 1


def report_text(report: RunReport) -> str:
    verb = "Would write" if report.dry_run else "Wrote"
    counts = report.planned if report.dry_run else report.applied
    lines = [
        f"Reconcile {report.run_id}: {report.outcome} in {report.seconds:.1f} s "
        f"({report.microsoft_users} students and teachers, "
        f"{report.microsoft_classes} classes in scope, "
        f"{report.graph_requests} Graph requests).",
    ]
    if counts:
        lines.append(
            f"{verb}: "
            + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(counts.items()))
            + "."
        )
    else:
        lines.append("Nothing to change: the portal matches Microsoft 365.")
    if report.held:
        lines.append(
            f"Held for approval: {report.held} (see `skolsynk held list {report.tenant_id}`)."
        )
    if report.skipped:
        lines.append(f"Skipped: {report.skipped} removals.")
    if report.collisions:
        lines.append(
            f"Collisions: {report.collisions} (see `skolsynk preview {report.tenant_id}`)."
        )
    if report.message:
        lines.append(report.message)
    for failure in report.failed[:20]:
        lines.append(f"  failed: {failure['action']} {failure['label']}: {failure['error']}")
    if len(report.failed) > 20:
        lines.append(f"  … and {len(report.failed) - 20} more failures")
    return "\n".join(lines)


# --- held ---------------------------------------------------------------------------------


def _held(args: argparse.Namespace) -> int:
    svc = services()
    tenant = svc.registry.get(args.tenant)
    if args.held_action == "list":
        held = svc.safety.held(tenant.id)
        if args.format == "json":
            print(
                to_json(
                    [
                        {
                            "id": h.action.key,
                            "held_at": h.held_at,
                            "why": h.why,
                            **_action_data(h.action),
                        }
                        for h in held
                    ]
                )
            )
            return 0
        if not held:
            print(f"No removals are held for {tenant.name}.")
            return 0
        print(f"{len(held)} removals held for {tenant.name}:")
        print(
            table(
                ("ID", "WHAT", "WHO", "HELD AT", "REASON"),
                (
                    (
                        h.action.key,
                        h.action.kind.value.replace("_", " "),
                        h.action.label,
                        h.held_at,
                        h.action.reason,
                    )
                    for h in held
                ),
            )
        )
        print(
            f"Approve with `skolsynk held approve {tenant.id} [IDS...]`, "
            f"reject with `skolsynk held reject {tenant.id} [IDS...]`."
        )
        return 0
    keys = list(args.ids) or None
    try:
        if args.held_action == "approve":
            taken, report = engine.approve_held(svc, tenant.id, keys)
            print(
                f"Approved {len(taken)} held removals; "
                f"wrote {report.written} changes to the portal."
            )
            for failure in report.failed:
                print(f"  failed: {failure['label']}: {failure['error']}", file=sys.stderr)
            return 0 if not report.failed else 1
        taken = engine.reject_held(svc, tenant.id, keys)
        print(f"Rejected {len(taken)} held removals; nothing was removed from the portal.")
        return 0
    except KeyError as exc:
        print(f"skolsynk: these ids are not held for {tenant.name}: {exc.args[0]}", file=sys.stderr)
        print(f"  See `skolsynk held list {tenant.id}`.", file=sys.stderr)
        return 1
