"""The ``skolsynk`` command line: parses arguments and hands each subcommand to its module.

Each area registers its own subcommands through ``register(subparsers)``; a handler returns the
exit code. Errors from the tree in ``common.errors`` are printed as sentences, never as stack
traces, with a non-zero exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from common.errors import (
    AlreadyRunning,
    ConfigError,
    NeedsAttention,
    SkolsynkError,
    TransientError,
)

#: modules that add subcommands, in the order they appear in ``--help``
COMMAND_MODULES: tuple[str, ...] = (
    "skolsynk.tenant_cli",
    "skolsynk.sync_cli",
    "skolsynk.subscriptions_cli",
    "skolsynk.ops_cli",
    "skolsynk.demo",
    "sandbox.cli",
)

EXIT_USAGE = 2
EXIT_FAILED = 1
EXIT_CONFIG = 3
EXIT_TRY_LATER = 4
EXIT_CODES = f"""exit codes:
  0  done (also: nothing to do, or the same work was already running elsewhere)
  {EXIT_FAILED}  refused or failed: the message says why and what to change
  {EXIT_USAGE}  the command line itself is wrong (unknown option, missing argument)
  {EXIT_CONFIG}  the configuration (environment variables) is incomplete or wrong
  {EXIT_TRY_LATER}  a service (Redis, Microsoft Graph, the portal) is unavailable: try later"""


def build_parser() -> argparse.ArgumentParser:
    """The whole argument parser, with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="skolsynk",
        description="Keep a school's Microsoft 365 tenant and a learning-material portal in step.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``skolsynk`` command and return its exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        print("Stopped.", file=sys.stderr)
        return 130
    except AlreadyRunning as exc:
        # not a failure: the work this command asked for is being done
        print(str(exc))
        return 0
    except SkolsynkError as exc:
        print(f"skolsynk: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"  {exc.hint}", file=sys.stderr)
        if isinstance(exc, ConfigError):
            return EXIT_CONFIG
        if isinstance(exc, TransientError):
            return EXIT_TRY_LATER
        if isinstance(exc, NeedsAttention):
            return EXIT_FAILED
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
