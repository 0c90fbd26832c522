"""The options of ``skolsynk tenant add`` and ``set``, and how they change a tenant: each
problem is reported naming the option as it was typed.

Failure policy: a wrong or missing option raises ``NeedsAttention`` with one sentence that
names the option and what it needs; nothing is stored.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from common.config import Secret
from common.errors import NeedsAttention
from common.state.registry import ENVIRONMENTS, PortalEnvironment, Tenant
from skolsynk.context import STDIN_TOKEN, read_secret


def portal_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("portal environments")
    for env in ENVIRONMENTS:
        group.add_argument(
            f"--{env}-portal", metavar="URL", help=f"SCIM base URL of the {env} portal"
        )
        group.add_argument(
            f"--{env}-token-file",
            metavar="PATH",
            help=f"read the bearer token of the {env} portal from this file",
        )
        group.add_argument(
            f"--{env}-token",
            metavar="TOKEN",
            help=f"bearer token of the {env} portal; - reads it from standard input",
        )
        group.add_argument(
            f"--{env}-mapping",
            metavar="MAPPING",
            help=f"where attributes go on the {env} portal, e.g. 'grade=off,role=userType' "
            "(default: what the portal declares; '' resets)",
        )
    group.add_argument(
        "--environment", choices=ENVIRONMENTS, help="which portal environment to sync to"
    )


def settings_options(parser: argparse.ArgumentParser, *, changing: bool) -> None:
    scope = parser.add_argument_group("scope (what reaches the portal)")
    scope.add_argument(
        "--school",
        action="append",
        metavar="SCHOOL_ID",
        help="sync only these SDS school ids (repeatable)",
    )
    if changing:
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
    if changing:
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
    if changing:
        state = parser.add_mutually_exclusive_group()
        state.add_argument(
            "--enable",
            dest="enabled",
            action="store_const",
            const=True,
            help="sync again: real-time changes, the hourly reconcile and subscription renewal "
            "(a reconcile is queued at once)",
        )
        state.add_argument(
            "--disable",
            dest="enabled",
            action="store_const",
            const=False,
            help="stop every write to this tenant's portal at once (real-time changes are "
            "dropped, reconciles refused) until --enable",
        )


def _portal_changes(tenant: Tenant, args: argparse.Namespace) -> dict[str, PortalEnvironment]:
    """The portal environments the options set, checked as options (named as typed)."""
    changes: dict[str, PortalEnvironment] = {}
    from_stdin = [env for env in ENVIRONMENTS if getattr(args, f"{env}_token") == STDIN_TOKEN]
    if len(from_stdin) > 1:
        raise NeedsAttention("Only one token can be read from standard input (-) at a time.")
    for env in ENVIRONMENTS:
        url = getattr(args, f"{env}_portal")
        option = f"--{env}-token"
        token = read_secret(
            getattr(args, f"{env}_token"), getattr(args, f"{env}_token_file"), option=option
        )
        mapping = getattr(args, f"{env}_mapping", None)
        if url is None and token is None and mapping is None:
            continue
        if url is not None and not url.strip():
            raise NeedsAttention(
                f"--{env}-portal is empty: give the SCIM base URL of the {env} portal, "
                "such as https://portal.example/scim/v2/ORG."
            )
        current = tenant.portals.get(env)
        if current is None and url is None and token is None:
            raise NeedsAttention(
                f"--{env}-mapping was given, but tenant {tenant.name} has no {env} portal: "
                f"add --{env}-portal URL."
            )
        if token is None and current is None:
            raise NeedsAttention(
                f"--{env}-portal needs its token too: add {option}-file PATH (or {option} -)."
            )
        if url is None and current is None:
            raise NeedsAttention(
                f"{option} was given, but tenant {tenant.name} has no {env} portal: "
                f"add --{env}-portal URL."
            )
        changes[env] = PortalEnvironment(
            url=url.strip() if url is not None else current.url,  # type: ignore[union-attr]
            token=Secret(token) if token is not None else current.token,  # type: ignore[union-attr]
            undecryptable="" if token is not None else current.undecryptable,  # type: ignore[union-attr]
            mapping=mapping if mapping is not None else (current.mapping if current else ""),
        )
    return changes


def apply_options(tenant: Tenant, args: argparse.Namespace) -> Tenant:
    portals = {**tenant.portals, **_portal_changes(tenant, args)}
    environment = args.environment or tenant.environment
    if environment not in portals:
        raise NeedsAttention(
            f"--environment {environment} needs a {environment} portal: add "
            f"--{environment}-portal URL and --{environment}-token-file PATH."
            if args.environment
            else "A new tenant needs its test portal: add --test-portal URL and "
            "--test-token-file PATH (or --test-token -)."
        )
    scope = tenant.scope
    if getattr(args, "all_schools", False):
        scope = replace(scope, school_ids=frozenset())
    if args.school:
        scope = replace(scope, school_ids=frozenset(args.school))
    if args.class_pattern is not None:
        scope = replace(scope, class_pattern=args.class_pattern or None)
    if getattr(args, "clear_lists", False):
        scope = replace(scope, include=frozenset(), exclude=frozenset())
    if args.include:
        scope = replace(scope, include=scope.include | set(args.include))
    if args.exclude:
        scope = replace(scope, exclude=scope.exclude | set(args.exclude))
    thresholds = tenant.thresholds
    if args.max_removals is not None:
        if args.max_removals < 0:
            raise NeedsAttention("--max-removals must be 0 or more.")
        thresholds = replace(thresholds, max_removals=args.max_removals)
    if args.max_removal_share is not None:
        if not 0 <= args.max_removal_share <= 1:
            raise NeedsAttention("--max-removal-share must be a share from 0 to 1, such as 0.05.")
        thresholds = replace(thresholds, max_removal_share=args.max_removal_share)
    if getattr(args, "name", None) is not None and not args.name.strip():
        raise NeedsAttention("--name is empty: give the name people use for this tenant.")
    enabled = getattr(args, "enabled", None)
    return replace(
        tenant,
        name=(getattr(args, "name", None) or tenant.name).strip(),
        environment=environment,
        portals=portals,
        scope=scope,
        thresholds=thresholds,
        enabled=tenant.enabled if enabled is None else enabled,
    )
