"""``skolsynk held list|approve|reject TENANT``: removals the mass-change guard held for a person.

Approving or rejecting everything needs ``--all`` or a yes on a terminal; single actions are named
by a short id (a unique start of the object id), the full id, or the person's e-mail.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from common.errors import NeedsAttention
from common.state.held import HeldAction
from common.sync import engine
from skolsynk.context import add_tenant_actions, services
from skolsynk.output import table, to_json
from skolsynk.portal_check import check_portal
from skolsynk.sync_cli import action_data

EXIT_USAGE = 2


def register(subparsers: Any) -> None:
    held = subparsers.add_parser(
        "held",
        help="list, approve or reject removals held by the mass-change guard",
        description="Deactivations and deletions above a tenant's threshold wait here for a "
        "person. Approving applies them (after checking each object is still gone in Microsoft "
        "365); rejecting drops them (a later run that finds the same difference holds it again).",
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
            "ids",
            metavar="ID",
            nargs="*",
            help="a held action: its id, a unique start of it or of the object id (as "
            "`held list` shows), or the person's e-mail or the class's name",
        )
        actions[name].add_argument(
            "--all",
            action="store_true",
            help=f"{name} every held removal (without ids, asked on a terminal, else required)",
        )


SHORT_ID_LENGTH = 8


def short_ids(held: list[HeldAction]) -> dict[str, str]:
    """Action key -> the shortest start of its object id (8 characters at least) that is
    unique among the held actions, kind included where two kinds share an object."""
    objects = [h.action.object_id for h in held]
    out: dict[str, str] = {}
    for h in held:
        oid = h.action.object_id
        others = set(objects) - {oid}
        size = SHORT_ID_LENGTH
        while size < len(oid) and any(o.startswith(oid[:size]) for o in others):
            size += 1
        short = oid[:size]
        out[h.action.key] = short if objects.count(oid) == 1 else f"{h.action.kind.value}:{short}"
    return out


def resolve_held(held: list[HeldAction], given: list[str], *, tenant_id: str) -> list[str]:
    """The keys of the held actions a person named: an id, a unique start of one (or of its
    object id), or the person's e-mail or class's name (any letter case).

    Raises ``NeedsAttention`` naming what matched nothing, or more than one action.
    """
    keys: list[str] = []
    unknown: list[str] = []
    ambiguous: list[str] = []
    for text in given:
        wanted = text.strip().lower()
        exact = [h for h in held if h.action.key.lower() == wanted]
        named = [h for h in held if h.action.label.lower() == wanted]
        started = [
            h
            for h in held
            if wanted
            and (
                h.action.key.lower().startswith(wanted)
                or h.action.object_id.lower().startswith(wanted)
            )
        ]
        matches = exact or named or started
        if not matches:
            unknown.append(text)
        elif len(matches) > 1:
            ambiguous.append(f"{text} ({len(matches)} held actions)")
        elif matches[0].action.key not in keys:
            keys.append(matches[0].action.key)
    problems = []
    if unknown:
        problems.append("nothing held matches " + ", ".join(unknown))
    if ambiguous:
        problems.append("more than one held action matches " + ", ".join(ambiguous))
    if problems:
        sentence = "; ".join(problems)
        raise NeedsAttention(
            sentence[0].upper() + sentence[1:] + ".",
            hint=f"Give a longer id; `skolsynk held list {tenant_id}` shows them.",
        )
    return keys


def _confirmed(action: str, count: int, tenant_name: str) -> bool:
    """Ask on a terminal whether to act on every held removal."""
    try:
        answer = input(f"{action.capitalize()} all {count} held removals for {tenant_name}? [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes", "j", "ja")


def _held(args: argparse.Namespace) -> int:
    svc = services()
    tenant = svc.registry.get(args.tenant)
    held = svc.safety.held(tenant.id)
    if args.held_action == "list":
        return _held_list(args, tenant.id, tenant.name, held)
    if not held:
        print(f"No removals are held for {tenant.name}.")
        return 0
    verb = args.held_action
    if args.ids:
        keys: list[str] | None = resolve_held(held, list(args.ids), tenant_id=tenant.id)
    elif args.all:
        keys = None
    elif sys.stdin.isatty():
        if not _confirmed(verb, len(held), tenant.name):
            print(f"Nothing was {verb}ed.")
            return 1
        keys = None
    else:
        print(
            f"skolsynk: give the ids of the held removals to {verb}, or --all to {verb} all "
            f"{len(held)} of them.",
            file=sys.stderr,
        )
        print(f"  See `skolsynk held list {tenant.id}`.", file=sys.stderr)
        return EXIT_USAGE
    if verb == "approve":
        check_portal(svc, tenant)
        taken, report = engine.approve_held(svc, tenant.id, keys)
        print(f"Approved {len(taken)} held removals; wrote {report.written} changes to the portal.")
        for failure in report.failed:
            print(f"  failed: {failure['label']}: {failure['error']}", file=sys.stderr)
        return 0 if not report.failed else 1
    taken = engine.reject_held(svc, tenant.id, keys)
    print(f"Rejected {len(taken)} held removals; nothing was removed from the portal.")
    return 0


def _held_list(
    args: argparse.Namespace, tenant_id: str, tenant_name: str, held: list[HeldAction]
) -> int:
    if args.format == "json":
        print(
            to_json(
                [
                    {
                        "id": h.action.key,
                        "held_at": h.held_at,
                        "why": h.why,
                        **action_data(h.action),
                    }
                    for h in held
                ]
            )
        )
        return 0
    if not held:
        print(f"No removals are held for {tenant_name}.")
        return 0
    short = short_ids(held)
    print(f"{len(held)} removals held for {tenant_name}:")
    print(
        table(
            ("ID", "WHAT", "WHO", "HELD AT", "REASON"),
            (
                (
                    short[h.action.key],
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
        f"Approve with `skolsynk held approve {tenant_id} ID...` (or --all), "
        f"reject with `skolsynk held reject {tenant_id} ID...` (or --all)."
    )
    return 0
