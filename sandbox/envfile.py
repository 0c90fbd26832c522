"""What the sandboxes' admin subcommands share: waiting for a sandbox that is still starting,
and the environment file (shell ``export`` lines) that tells Skolsynk where the sandboxes are.

Failure policy: a sandbox that does not answer within the wait raises ``SandboxNotReady`` with a
sentence naming the file it waited for; the environment file is written owner-only (it holds a
client secret and tokens) and never printed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import requests

DEFAULT_ENV_FILE = Path("var/sandbox.env")
DEFAULT_WAIT_SECONDS = 60.0
_EXPORT = re.compile(r"^export ([A-Z_][A-Z0-9_]*)=")

T = TypeVar("T")


class SandboxNotReady(Exception):
    """The sandbox did not write its info file, or did not answer, within the wait."""


def add_env_options(parser: argparse.ArgumentParser, *, writes: str, waits_for: str) -> None:
    """``--env-file`` (where ``writes`` go) and ``--wait`` (for ``waits_for`` to start)."""
    parser.add_argument(
        "--env-file",
        type=Path,
        default=DEFAULT_ENV_FILE,
        metavar="FILE",
        help=f"where to write {writes} ({DEFAULT_ENV_FILE})",
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=DEFAULT_WAIT_SECONDS,
        metavar="SECONDS",
        help=f"how long to wait for {waits_for} to start ({DEFAULT_WAIT_SECONDS:.0f})",
    )


def when_answering(
    info_path: Path, send: Callable[[dict[str, Any]], T], *, timeout: float, what: str
) -> T:
    """``send(info)`` with the sandbox's info file, once the file exists and the sandbox takes
    connections; waits (re-reading the file, which a restart rewrites) for up to ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
            return send(info)
        except (OSError, ValueError, requests.ConnectionError) as exc:
            if time.monotonic() >= deadline:
                raise SandboxNotReady(
                    f"{what} did not answer within {timeout:.0f} s ({info_path}: "
                    f"{type(exc).__name__}). Is it running with this data directory?"
                ) from exc
            time.sleep(0.2)


def update_env_file(path: Path, values: Mapping[str, str]) -> Path:
    """Set ``export NAME='value'`` lines in ``path`` (keeping its other lines); owner-only."""
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    kept = [line for line in lines if not (m := _EXPORT.match(line)) or m.group(1) not in values]
    kept += [f"export {name}={shlex.quote(value)}" for name, value in values.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("\n".join(kept) + "\n")
    os.replace(temporary, path)
    return path


def env_file_values(path: Path) -> dict[str, str]:
    """The ``export`` lines of an environment file, as names and values."""
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for line in path.read_text(encoding="utf-8").splitlines():
        if _EXPORT.match(line):
            name, _, raw = line[len("export ") :].partition("=")
            values[name] = " ".join(shlex.split(raw))
    return values
