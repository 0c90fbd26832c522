"""``skolsynk tenant add|list|show|set|remove|rekey``: the schools Skolsynk serves.

Tokens are read from a file (``--test-token-file PATH``) or standard input (``--test-token -``)
so that they never show in ``ps`` or a shell's history; ``--test-token TOKEN`` works too.
Switching a tenant's environment queues a full reconcile against the new portal (``--reconcile``
runs it here instead, with progress), since nothing else would fill it.
"""

from __future__ import annotations

import argparse
from typing import Any

from common.model import Scope, Thresholds
from common.state.dispatch import Dispatcher
from common.state.registry import ENVIRONMENTS, PortalEnvironment, Tenant
from common.state.subscriptions import SubscriptionStore
from common.sync import engine
from common.sync.tenants import (
    PortalCheck,
    add_tenant,
    canonical_tenant_id,
    remove_tenant,
    update_tenant,
)
from skolsynk.cli import EXIT_CODES
from skolsynk.context import add_tenant_argument, services
from skolsynk.output import ProgressBar, table, to_json
from skolsynk.tenant_options import apply_options, portal_options, settings_options


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "tenant",
        help="register and configure school tenants",
        description="Register the Microsoft 365 tenants of schools and where their portal is.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="tenant_command", metavar="ACTION", required=True)

    def command(name: str, text: str, description: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = commands.add_parser(
            name,
            help=text,
            description=description,
            epilog=EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        return sub

    add = command(
        "add",
        "register a tenant (it starts on the test portal)",
        "Register a school's Microsoft 365 tenant and its test portal. The tenant starts on "
        "the test portal; nothing is written anywhere until you run `skolsynk reconcile`.",
    )
    add.add_argument(
        "tenant_id",
        metavar="TENANT_ID",
        help="the Microsoft 365 tenant id (a GUID), or one of its domains "
        "(lund.onmicrosoft.com), which is looked up",
    )
    add.add_argument("--name", required=True, help="a name people use for this school tenant")
    portal_options(add)
    settings_options(add, changing=False)
    add.set_defaults(handler=_add)

    show_all = command("list", "list registered tenants", "List the registered tenants.")
    show_all.add_argument("--format", choices=("text", "json"), default="text")
    show_all.set_defaults(handler=_list)

    show = command(
        "show", "show one tenant's settings (tokens hidden)", "Show one tenant's settings."
    )
    add_tenant_argument(show)
    show.add_argument("--format", choices=("text", "json"), default="text")
    show.set_defaults(handler=_show)

    change = command(
        "set",
        "change a tenant's settings",
        "Change a tenant's settings. Switching --environment queues a full reconcile against "
        "the new portal (--reconcile runs it here and now).",
    )
    add_tenant_argument(change)
    change.add_argument("--name", help="rename the tenant (the name people use for it)")
    portal_options(change)
    change.add_argument(
        "--reconcile",
        action="store_true",
        help="after switching --environment, run the reconcile here instead of queueing it",
    )
    settings_options(change, changing=True)
    change.set_defaults(handler=_set)

    remove = command(
        "remove",
        "forget a tenant (the portal is not changed)",
        "Forget a tenant: its Graph subscriptions are deleted, its queued work is dropped; "
        "nothing in its portal is changed and its audit log stays readable for six months.",
    )
    add_tenant_argument(remove)
    remove.set_defaults(handler=_remove)

    rekey = command(
        "rekey",
        "encrypt every stored token with the current SKOLSYNK_SECRET_KEY",
        "After changing SKOLSYNK_SECRET_KEY (with the old key in SKOLSYNK_SECRET_KEY_PREVIOUS), "
        "encrypt every stored portal token with the new key.",
    )
    rekey.set_defaults(handler=_rekey)


def describe(tenant: Tenant) -> dict[str, Any]:
    """A tenant's settings as people and tools see them (tokens as ``***``)."""
    return {
        "id": tenant.id,
        "name": tenant.name,
        "environment": tenant.environment,
        "enabled": tenant.enabled,
        "portals": {
            env: {
                "url": p.url,
                "token": "*** (cannot be decrypted)" if p.undecryptable else str(p.token),
                "mapping": p.mapping,
            }
            for env, p in tenant.portals.items()
        },
        "scope": {
            "schools": sorted(tenant.scope.school_ids) or "all",
            "class_pattern": tenant.scope.class_pattern or "",
            "include": sorted(tenant.scope.include),
            "exclude": sorted(tenant.scope.exclude),
        },
        "thresholds": {
            "max_removals": tenant.thresholds.max_removals,
            "max_removal_share": tenant.thresholds.max_removal_share,
        },
        "created_at": tenant.created_at,
    }


def _add(args: argparse.Namespace) -> int:
    svc = services()
    # the id first: "already registered" is the answer to a repeated command, whatever else
    tenant_id = canonical_tenant_id(svc, args.tenant_id)
    svc.registry.refuse_registered(tenant_id, args.name)
    tenant = apply_options(
        Tenant(id=tenant_id, name=args.name, scope=Scope(), thresholds=Thresholds()), args
    )
    stored = add_tenant(svc, tenant, check_portal=portal_checker(args))
    looked_up = (
        "" if stored.id == args.tenant_id.strip().lower() else f", looked up from {args.tenant_id}"
    )
    print(
        f"Registered tenant {stored.name} ({stored.id}{looked_up}) "
        f"on the {stored.environment} portal."
    )
    print(f"Next: `skolsynk preview {stored.id}` shows what the first sync would do.")
    return 0


def _list(args: argparse.Namespace) -> int:
    tenants = services().registry.all()
    if args.format == "json":
        print(to_json([describe(t) for t in tenants]))
        return 0
    if not tenants:
        print("No tenants are registered. Add one with `skolsynk tenant add`.")
        return 0
    print(
        table(
            ("NAME", "TENANT ID", "ENVIRONMENT", "ENABLED", "PORTAL"),
            (
                (
                    t.name,
                    t.id,
                    t.environment,
                    "yes" if t.enabled else "no",
                    t.portals[t.environment].url if t.environment in t.portals else "-",
                )
                for t in tenants
            ),
        )
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    tenant = services().registry.get(args.tenant)
    data = describe(tenant)
    if args.format == "json":
        print(to_json(data))
        return 0
    print(f"{tenant.name} ({tenant.id})")
    print(f"  environment: {tenant.environment}{'' if tenant.enabled else ' (disabled)'}")
    for env, portal in data["portals"].items():
        print(f"  {env} portal: {portal['url']} (token {portal['token']})")
    scope = data["scope"]
    schools = scope["schools"] if scope["schools"] == "all" else ", ".join(scope["schools"])
    print(f"  schools: {schools}")
    print(f"  class pattern: {scope['class_pattern'] or '(any)'}")
    print(f"  include: {', '.join(scope['include']) or '-'}")
    print(f"  exclude: {', '.join(scope['exclude']) or '-'}")
    t = data["thresholds"]
    print(
        f"  hold removals above {t['max_removals']} objects and "
        f"{t['max_removal_share']:.0%} of managed objects"
    )
    print(portal_mapping_text(tenant))
    return 0


def _set(args: argparse.Namespace) -> int:
    svc = services()
    before = svc.registry.get(args.tenant)
    tenant = apply_options(before, args)
    changed = frozenset(
        env
        for env in ENVIRONMENTS
        if (
            getattr(args, f"{env}_portal") is not None
            and (env not in before.portals or tenant.portals[env].url != before.portals[env].url)
        )
        # a new token or mapping is checked against the portal too
        or any(
            getattr(args, f"{env}_{option}", None) is not None
            for option in ("token", "token_file", "mapping")
        )
    )
    tenant = update_tenant(svc, tenant, check_portal=portal_checker(args), changed=changed)
    print(
        f"Updated tenant {tenant.name} ({tenant.id}); it syncs to the {tenant.environment} portal."
    )
    if not tenant.enabled:
        if before.enabled:
            print("It is disabled: nothing is written to its portal until `--enable`.")
        return 0
    if before.enabled and tenant.environment == before.environment and not args.reconcile:
        return 0
    if args.reconcile:
        progress = ProgressBar()
        try:
            report = engine.reconcile_tenant(
                svc, tenant.id, why="environment switch", status=progress.status, progress=progress
            )
        finally:
            progress.finish()
        print(
            f"Reconciled against the {tenant.environment} portal: {report.outcome}, "
            f"{report.written} changes written." + (f" {report.message}" if report.message else "")
        )
        return 0 if report.outcome in ("ok", "held", "gated", "skipped") else 1
    queued = Dispatcher(svc.redis).enqueue_reconcile(tenant.id, why="environment switch")
    what = (
        "enabled again"
        if tenant.environment == before.environment
        else (f"switched to the {tenant.environment} portal")
    )
    print(
        f"It was {what}, so a full reconcile against {tenant.portal().url} "
        + ("is queued" if queued else "was already queued")
        + f"; follow it with `skolsynk status {tenant.id}`, or run it here with "
        f"`skolsynk reconcile {tenant.id}`."
    )
    return 0


def _remove(args: argparse.Namespace) -> int:
    removal = remove_tenant(services(), args.tenant)
    tenant = removal.tenant
    print(f"Removed tenant {tenant.name} ({tenant.id}). Nothing in its portal was changed.")
    print(
        f"Deleted {removal.subscriptions_deleted} Graph subscriptions, dropped "
        f"{removal.jobs_dropped} queued jobs; its audit log stays readable for six months "
        f"(`skolsynk audit {tenant.id}`)."
    )
    if removal.subscriptions_left:
        print(
            f"{removal.subscriptions_left} subscriptions could not be deleted in Microsoft 365 "
            f"({removal.problem}); they expire within three days and their notifications are "
            "answered without queueing anything."
        )
    return 0


def _rekey(args: argparse.Namespace) -> int:
    svc = services()
    count, stuck = svc.registry.rekey()
    print(f"Encrypted {count} portal tokens with the current SKOLSYNK_SECRET_KEY.")
    store = SubscriptionStore(svc.redis, svc.config.secret_key)
    waiting = store.on_other_keys(t.id for t in svc.registry.all())
    if waiting:
        print(
            f"{waiting} subscriptions are still verified with an earlier key; each moves to the "
            "new key with its next notification. Keep SKOLSYNK_SECRET_KEY_PREVIOUS until "
            "this command says none are left."
        )
    if stuck:
        print(
            f"No key at hand decrypts the tokens of: {', '.join(stuck)}. Add the key they were "
            "written with to SKOLSYNK_SECRET_KEY_PREVIOUS and run this again, or set them "
            "again with `skolsynk tenant set TENANT --test-token-file PATH`."
        )
        return 1
    if not waiting:
        print("SKOLSYNK_SECRET_KEY_PREVIOUS is no longer needed.")
    return 0


def portal_checker(args: argparse.Namespace) -> PortalCheck:
    """``portal check`` on each portal connection these options set, after the URL policy and
    the one-tenant-per-portal rule: a refused token or a mapping that does not parse refuses the
    change, a portal that cannot be checked now is only reported."""
    from common.errors import SkolsynkError
    from common.portal.check import PortalTokenRefused
    from common.portal.mapping import mapping_overrides
    from skolsynk.portal_cli import run_check

    ca_bundle = services().config.ca_bundle

    def check(env: str, portal: PortalEnvironment) -> None:
        if all(getattr(args, f"{env}_{o}", None) is None for o in ("portal", "token", "mapping")):
            return
        mapping_overrides(portal.mapping)  # a mapping that does not parse is refused
        try:
            result = run_check(
                portal.url, portal.token, mapping=portal.mapping, ca_bundle=ca_bundle
            )
        except PortalTokenRefused:
            raise
        except SkolsynkError as exc:
            print(f"Warning: the {env} portal could not be checked: {exc}")
        else:
            print(f"The {env} portal answers as a SCIM server; the mapping used there:")
            print("\n".join(f"  {a} -> {w}" for a, w in result.mapping.table()))

    return check


def portal_mapping_text(tenant: Tenant) -> str:
    """The mapping in force on the tenant's current portal (asked of the portal itself)."""
    from common.errors import SkolsynkError
    from skolsynk.portal_cli import run_check

    portal = tenant.portals.get(tenant.environment)
    if portal is None:
        return "  mapping: no portal is set for the current environment"
    try:
        check = run_check(
            portal.url, portal.token, mapping=portal.mapping, ca_bundle=services().config.ca_bundle
        )
    except SkolsynkError as exc:
        return f"  mapping: unknown, the {tenant.environment} portal could not be asked ({exc})"
    lines = [f"  mapping on the {tenant.environment} portal ({portal.mapping or 'default'}):"]
    lines += [f"    {a} -> {w}" for a, w in check.mapping.table()]
    return "\n".join(lines)
