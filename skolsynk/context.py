"""The pieces every command needs: its services, built on first use from the environment, and
the TENANT argument, worded the same in every command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path

from common.config import load_config
from common.errors import NeedsAttention
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


#: what ``--...-token -`` reads from: standard input (tests may point it elsewhere)
STDIN_TOKEN = "-"  # noqa: S105 - the name of standard input, not a token


def read_secret(value: str | None, path: str | None, *, option: str) -> str | None:
    """A token given as ``--OPTION TOKEN``, ``--OPTION -`` (standard input, so that it never
    shows in ``ps`` or the shell's history) or ``--OPTION-file PATH``; ``None`` when neither.

    Raises ``NeedsAttention`` naming the option when the token is empty or cannot be read.
    """
    if value is not None and path is not None:
        raise NeedsAttention(f"Give {option} or {option}-file, not both.")
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not text"
            raise NeedsAttention(f"{option}-file {path}: cannot read it ({reason}).") from None
        where = f"{option}-file {path}"
    elif value == STDIN_TOKEN:
        text = sys.stdin.readline()
        where = f"{option} - (standard input)"
    elif value is not None:
        text = value
        where = option
    else:
        return None
    token = text.strip()
    if not token:
        raise NeedsAttention(f"{where} gave an empty token.")
    if any(c.isspace() or ord(c) < 0x20 for c in token):
        raise NeedsAttention(f"{where}: a token is one line without spaces.")
    return token
