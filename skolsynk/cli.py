"""The ``skolsynk`` command line: parses arguments and hands each subcommand to its module.

Each area registers its own subcommands through ``register(subparsers)``; a handler returns the
exit code. Errors from the tree in ``common.errors`` are printed as sentences, never as stack
traces, with a non-zero exit code; an error about the portal also names the portal's URL. Output
piped into a reader that stops early (``| head``) ends quietly, as Unix tools do.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from common.errors import ConfigError, NeedsAttention, SkolsynkError, TransientError
from skolsynk.output import portal_error_hint

#: modules that add subcommands, in the order they appear in ``--help``
COMMAND_MODULES: tuple[str, ...] = (
    "skolsynk.tenant_cli",
    "skolsynk.portal_cli",
    "skolsynk.sync_cli",
    "skolsynk.held_cli",
    "skolsynk.subscriptions_cli",
    "skolsynk.ops_cli",
    "skolsynk.demo",
    "sandbox.cli",
)

EXIT_USAGE = 2
EXIT_FAILED = 1
EXIT_CONFIG = 3
EXIT_TRY_LATER = 4
#: what a shell reports for a tool stopped by SIGPIPE (128 + 13), as ``seq 1e9 | head`` does
EXIT_BROKEN_PIPE = 141


def build_parser() -> argparse.ArgumentParser:
    """The whole argument parser, with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="skolsynk",
        description="Keep a school's Microsoft 365 tenant and a learning-material portal in step.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``skolsynk`` command and return its exit code."""
    try:
        return _run(argv)
    except BrokenPipeError:  # anywhere: a command's output, --help, an error sentence
        return _reader_went_away()


def _run(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = int(args.handler(args))
        sys.stdout.flush()
        return code
    except KeyboardInterrupt:
        print("Stopped.", file=sys.stderr)
        return 130
    except SkolsynkError as exc:
        print(f"skolsynk: {exc}", file=sys.stderr)
        hint = portal_error_hint(exc, _tenant_of(args)) or exc.hint
        if hint:
            print(f"  {hint}", file=sys.stderr)
        if isinstance(exc, ConfigError):
            return EXIT_CONFIG
        if isinstance(exc, TransientError):
            return EXIT_TRY_LATER
        if isinstance(exc, NeedsAttention):
            return EXIT_FAILED
        return EXIT_FAILED


def _reader_went_away() -> int:
    """The reader of stdout closed it (``| head``): stop without a word, as Unix tools do.

    stdout is pointed at /dev/null so that the interpreter's last flush at exit cannot fail again.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_BROKEN_PIPE


def _tenant_of(args: argparse.Namespace) -> object | None:
    """The registered tenant the command acted on, if it has one and it can be read."""
    name = getattr(args, "tenant", None)
    if not isinstance(name, str):
        return None
    from skolsynk.context import services

    try:
        return services().registry.get(name)
    except SkolsynkError:
        return None


if __name__ == "__main__":
    sys.exit(main())
