"""The pieces every command needs: its services, built on first use from the environment, and
the TENANT argument, worded the same in every command."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from functools import cache

from common.config import load_config
from common.sync.services import Services, build_services

Handler = Callable[[argparse.Namespace], int]


@cache
def services() -> Services:
    """This process's services (configuration read once; ``ConfigError`` lists every problem)."""
    return build_services(load_config())


def add_tenant_argument(parser: argparse.ArgumentParser) -> None:
    """The TENANT a per-tenant command acts on, so that ``--help`` says the same everywhere."""
    parser.add_argument("tenant", metavar="TENANT", help="tenant id or name")


def add_tenant_actions(
    parser: argparse.ArgumentParser,
    actions: Iterable[tuple[str, str]],
    *,
    handler: Handler,
    dest: str,
    action_key: str,
) -> dict[str, argparse.ArgumentParser]:
    """An ACTION subcommand per ``(name, help)``, each on a TENANT, all run by one ``handler``.

    The handler reads the action from ``args.<action_key>``; the returned parsers, by name, take
    the options that only some actions have.
    """
    subparsers = parser.add_subparsers(dest=dest, metavar="ACTION", required=True)
    parsers: dict[str, argparse.ArgumentParser] = {}
    for name, text in actions:
        sub = subparsers.add_parser(name, help=text)
        add_tenant_argument(sub)
        sub.set_defaults(handler=handler, **{action_key: name})
        parsers[name] = sub
    return parsers
