"""``skolsynk tenant add|list|show|set|remove``: the schools Skolsynk serves."""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any

from common.config import Secret
from common.model import Scope, Thresholds
from common.state.registry import ENVIRONMENTS, PortalEnvironment, Tenant
from skolsynk.context import add_tenant_argument, services
from skolsynk.output import table, to_json


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "tenant",
        help="register and configure school tenants",
        description="Register the Microsoft 365 tenants of schools and where their portal is.",
    )
    commands = parser.add_subparsers(dest="tenant_command", metavar="ACTION", required=True)

    add = commands.add_parser("add", help="register a tenant (it starts on the test portal)")
    add.add_argument("tenant_id", metavar="TENANT_ID", help="the Microsoft 365 tenant id")
    add.add_argument("--name", required=True, help="a name people use for this school tenant")
    _portal_options(add)
    _settings_options(add)
    add.set_defaults(handler=_add)

    show_all = commands.add_parser("list", help="list registered tenants")
    show_all.add_argument("--format", choices=("text", "json"), default="text")
    show_all.set_defaults(handler=_list)

    show = commands.add_parser("show", help="show one tenant's settings (tokens hidden)")
    add_tenant_argument(show)
    show.add_argument("--format", choices=("text", "json"), default="text")
    show.set_defaults(handler=_show)

    change = commands.add_parser("set", help="change a tenant's settings")
    add_tenant_argument(change)
    change.add_argument("--name", help="rename the tenant (the name people use for it)")
    _portal_options(change)
    _settings_options(change)
    change.set_defaults(handler=_set)

    remove = commands.add_parser("remove", help="forget a tenant (the portal is not changed)")
    add_tenant_argument(remove)
    remove.set_defaults(handler=_remove)


def _portal_options(parser: argparse.ArgumentParser) -> None:
    for env in ENVIRONMENTS:
        parser.add_argument(
            f"--{env}-portal", metavar="URL", help=f"SCIM base URL of the {env} portal"
        )
        parser.add_argument(
            f"--{env}-token", metavar="TOKEN", help=f"bearer token of the {env} portal"
        )
        parser.add_argument(
            f"--{env}-mapping",
            metavar="MAPPING",
            help=f"where attributes go on the {env} portal, e.g. 'grade=off,role=userType' "
            "(default: what the portal declares; '' resets)",
        )
    parser.add_argument(
        "--environment", choices=ENVIRONMENTS, help="which portal environment to sync to"
    )


def _settings_options(parser: argparse.ArgumentParser) -> None:
    scope = parser.add_argument_group("scope (what reaches the portal)")
    scope.add_argument(
        "--school",
        action="append",
        metavar="SCHOOL_ID",
        help="sync only these SDS school ids (repeatable)",
    )
    scope.add_argument("--all-schools", action="store_true", help="sync every school again")
    scope.add_argument(
        "--class-pattern", metavar="PATTERN", help="only classes whose name matches, e.g. '7*'"
    )
    scope.add_argument(
        "--include", action="append", metavar="ID_OR_NAME", help="always sync this class or user"
    )
    scope.add_argument(
        "--exclude", action="append", metavar="ID_OR_NAME", help="never sync this class or user"
    )
    scope.add_argument(
        "--clear-lists", action="store_true", help="empty the include and exclude lists"
    )
    guard = parser.add_argument_group("safety")
    guard.add_argument(
        "--max-removals", type=int, metavar="N", help="hold removals above N objects (default 20)"
    )
    guard.add_argument(
        "--max-removal-share",
        type=float,
        metavar="SHARE",
        help="...and above this share of managed objects (default 0.05)",
    )
    state = parser.add_mutually_exclusive_group()
    state.add_argument(
        "--enable",
        dest="enabled",
        action="store_const",
        const=True,
        help="include the tenant in the hourly reconcile and subscription renewal (the default)",
    )
    state.add_argument(
        "--disable",
        dest="enabled",
        action="store_const",
        const=False,
        help="leave it out of the hourly reconcile and subscription renewal; its portal is kept",
    )


def _apply_options(tenant: Tenant, args: argparse.Namespace) -> Tenant:
    portals = dict(tenant.portals)
    for env in ENVIRONMENTS:
        url = getattr(args, f"{env}_portal")
        token = getattr(args, f"{env}_token")
        mapping = getattr(args, f"{env}_mapping", None)
        if url is None and token is None and mapping is None:
            continue
        current = portals.get(env)
        portals[env] = PortalEnvironment(
            url=(url or (current.url if current else "")).rstrip("/"),
            token=Secret(token)
            if token is not None
            else (current.token if current else Secret("")),
            mapping=mapping if mapping is not None else (current.mapping if current else ""),
        )
    scope = tenant.scope
    if args.all_schools:
        scope = replace(scope, school_ids=frozenset())
    if args.school:
        scope = replace(scope, school_ids=frozenset(args.school))
    if args.class_pattern is not None:
        scope = replace(scope, class_pattern=args.class_pattern or None)
    if args.clear_lists:
        scope = replace(scope, include=frozenset(), exclude=frozenset())
    if args.include:
        scope = replace(scope, include=scope.include | set(args.include))
    if args.exclude:
        scope = replace(scope, exclude=scope.exclude | set(args.exclude))
    thresholds = tenant.thresholds
    if args.max_removals is not None:
        thresholds = replace(thresholds, max_removals=args.max_removals)
    if args.max_removal_share is not None:
        thresholds = replace(thresholds, max_removal_share=args.max_removal_share)
    return replace(
        tenant,
        name=getattr(args, "name", None) or tenant.name,
        environment=args.environment or tenant.environment,
        portals=portals,
        scope=scope,
        thresholds=thresholds,
        enabled=tenant.enabled if args.enabled is None else args.enabled,
    )


def describe(tenant: Tenant) -> dict[str, Any]:
    """A tenant's settings as people and tools see them (tokens as ``***``)."""
    return {
        "id": tenant.id,
        "name": tenant.name,
        "environment": tenant.environment,
        "enabled": tenant.enabled,
        "portals": {
            env: {"url": p.url, "token": str(p.token), "mapping": p.mapping}
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
    tenant = _apply_options(
        Tenant(id=args.tenant_id, name=args.name, scope=Scope(), thresholds=Thresholds()), args
    )
    check_portals(tenant, args)
    stored = services().registry.add(tenant)
    print(f"Registered tenant {stored.name} ({stored.id}) on the {stored.environment} portal.")
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
    registry = services().registry
    tenant = _apply_options(registry.get(args.tenant), args)
    check_portals(tenant, args)
    registry.save(tenant)
    print(
        f"Updated tenant {tenant.name} ({tenant.id}); it syncs to the {tenant.environment} portal."
    )
    return 0


def check_portals(tenant: Tenant, args: argparse.Namespace) -> None:
    """``portal check`` on each portal connection these options set; a refused token refuses
    the change, a portal that cannot be checked now is only reported."""
    from common.errors import SkolsynkError
    from common.portal.check import PortalTokenRefused
    from common.portal.mapping import mapping_overrides
    from skolsynk.portal_cli import run_check

    ca_bundle = services().config.ca_bundle
    for env, portal in tenant.portals.items():
        if all(getattr(args, f"{env}_{o}", None) is None for o in ("portal", "token", "mapping")):
            continue
        mapping_overrides(portal.mapping)  # a mapping that does not parse is refused
        try:
            check = run_check(portal.url, portal.token, mapping=portal.mapping, ca_bundle=ca_bundle)
        except PortalTokenRefused:
            raise
        except SkolsynkError as exc:
            print(f"Warning: the {env} portal could not be checked: {exc}")
        else:
            print(f"The {env} portal answers as a SCIM server; the mapping used there:")
            print("\n".join(f"  {a} -> {w}" for a, w in check.mapping.table()))


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


def _remove(args: argparse.Namespace) -> int:
    tenant = services().registry.remove(args.tenant)
    print(f"Removed tenant {tenant.name} ({tenant.id}). Nothing in its portal was changed.")
    return 0
