"""``skolsynk preview`` and ``reconcile``: what a sync will do, and doing it."""

from __future__ import annotations

import argparse
from typing import Any

from common.model import Action, ActionKind
from common.state.runs import RunReport
from common.sync import engine
from common.sync.plan_csv import plan_csv
from skolsynk.context import add_tenant_argument, services
from skolsynk.output import ProgressBar, table, to_json
from skolsynk.portal_check import check_portal

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
    ActionKind.DELETE_DUPLICATE_USER: "duplicate users to delete once approved",
    ActionKind.DELETE_DUPLICATE_GROUP: "duplicate classes to delete once approved",
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


# --- preview ------------------------------------------------------------------------------


def _preview(args: argparse.Namespace) -> int:
    progress = ProgressBar()
    svc = services()
    check_portal(svc, svc.registry.get(args.tenant))
    view = engine.preview(svc, args.tenant, status=progress.status)
    if args.format == "json":
        print(to_json(preview_data(view)))
    elif args.format == "csv":
        print(preview_csv(view), end="")
    else:
        print(preview_text(view, limit=None if args.all else PREVIEW_LIMIT_PER_KIND))
    return 0


def action_data(action: Action) -> dict[str, Any]:
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
        "portal_cannot_hold": list(view.notes),
        "counts": plan.counts(),
        "held_whole_because": view.foreign,
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
        "duplicates": [
            {
                "kind": d.kind,
                "microsoft_id": d.object_id,
                "name": d.label,
                "kept_portal_id": d.kept_id,
                "duplicate_portal_ids": list(d.duplicate_ids),
            }
            for d in plan.duplicates
        ],
        "actions": [action_data(a) for a in plan.actions],
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
        *(f"Note: {note}." for note in view.notes),
        "",
    ]
    counts = plan.counts()
    summary = [(title, counts[k.value]) for k, title in KIND_TITLES.items() if counts[k.value]]
    if summary:
        out.append(table(("WHAT", "HOW MANY"), summary))
    else:
        out.append("Nothing to do: the portal matches Microsoft 365.")
    if view.foreign:
        out += ["", f"The whole run would be HELD: {view.foreign}."]
    elif view.gate:
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
    if plan.duplicates:
        copies = sum(len(d.duplicate_ids) for d in plan.duplicates)
        out += [
            "",
            f"DUPLICATES ({copies}): portal objects carrying the Microsoft 365 id of another. "
            "The oldest copy is kept and brought up to date; the others leave their classes "
            "and are deleted only once approved (`skolsynk held approve`), since they may "
            "carry licences.",
        ]
        out.append(
            table(
                ("KIND", "NAME", "KEPT", "DUPLICATES"),
                ((d.kind, d.label, d.kept_id, ", ".join(d.duplicate_ids)) for d in plan.duplicates),
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
    svc = services()
    check_portal(svc, svc.registry.get(args.tenant))
    try:
        report = engine.reconcile_tenant(
            svc, args.tenant, dry_run=args.dry_run, status=progress.status, progress=progress
        )
    finally:
        progress.finish()
    if args.format == "json":
        print(to_json(report.to_dict()))
    else:
        print(report_text(report))
    return 0 if report.outcome in ("ok", "preview", "held", "gated") else 1


def _counted(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(counts.items()))


def report_text(report: RunReport) -> str:
    """What a run did, in words that agree with each other: planned, applied, held, failed."""
    planned = sum(report.planned.values())
    lines = [
        f"Reconcile {report.run_id}: {report.outcome} in {report.seconds:.1f} s "
        f"({report.microsoft_users} students and teachers, "
        f"{report.microsoft_classes} classes in scope, "
        f"{report.graph_requests} Graph requests).",
    ]
    if report.dry_run:
        lines.append(
            f"Would write: {_counted(report.planned)}."
            if planned
            else "Nothing to change: the portal matches Microsoft 365."
        )
    elif not planned and report.outcome != "held":
        lines.append("Nothing to change: the portal matches Microsoft 365.")
    else:
        lines.append(
            f"Planned {planned} changes: applied {report.written}, held {report.held}, "
            f"skipped {report.skipped}, failed {len(report.failed)}."
        )
        if report.applied:
            lines.append(f"Applied: {_counted(report.applied)}.")
    if report.held:
        lines.append(
            f"Held for approval: {report.held} removals (mass-change guard); nothing of them "
            f"was written. See `skolsynk held list {report.tenant_id}`."
        )
    if report.skipped:
        lines.append(f"Skipped: {report.skipped} removals.")
    if report.collisions:
        lines.append(
            f"Collisions: {report.collisions} (see `skolsynk preview {report.tenant_id}`)."
        )
    if report.duplicates:
        lines.append(
            f"Duplicates: {report.duplicates} portal objects share the Microsoft 365 id of "
            f"another (see `skolsynk preview {report.tenant_id}`)."
        )
    # a run held whole (someone else's portal) has its reason in the message, and nothing up
    # for approval; a run that held some removals said so above
    if report.message and (report.outcome != "held" or not report.held):
        lines.append(report.message)
    lines += [f"Note: {note}." for note in report.notes]
    for failure in report.failed[:20]:
        lines.append(f"  failed: {failure['action']} {failure['label']}: {failure['error']}")
    if len(report.failed) > 20:
        lines.append(f"  … and {len(report.failed) - 20} more failures")
    return "\n".join(lines)
