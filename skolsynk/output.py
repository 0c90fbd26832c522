"""Output for people: tables, progress bars, durations and plain sentences (among them what is
wrong with a portal URL); JSON and CSV for tools."""

from __future__ import annotations

import csv
import io
import json
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any, TextIO
from urllib.parse import urlsplit

from common.errors import (
    ConflictError,
    NotFound,
    PortalAuthError,
    PortalRequestError,
    PortalUnavailable,
    SkolsynkError,
)

SCIM_BASE_URL_EXAMPLE = "https://host/scim/v2/ORG"
#: SCIM endpoints people paste instead of the base URL they hang under
_SCIM_ENDPOINTS = ("users", "groups", "serviceproviderconfig", "schemas", "resourcetypes")


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain text table with aligned columns."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def duration(seconds: float) -> str:
    """A span of time as people read it: ``28 d 22 h``, ``5 h 3 min``, ``12 min``, ``40 s``."""
    whole = int(seconds)
    if whole < 0:
        return "expired"
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"


def cell(value: Any) -> str:
    """One value in a cell for people and spreadsheets: lists joined by commas, nothing for
    none, booleans as in JSON (true, false); never a Python repr."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple, set, frozenset)):
        return ",".join(cell(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return str(value)


def portal_url_problem(url: str) -> str | None:
    """What is wrong with ``url`` as a SCIM base URL, as a sentence, or None if it looks right."""
    expected = f"Expected a SCIM base URL such as {SCIM_BASE_URL_EXAMPLE}."
    if any(c.isspace() for c in url):
        return f"The portal URL {url!r} contains a space. {expected}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"The portal URL {url!r} is not an http or https URL. {expected}"
    path = parts.path.rstrip("/")
    if not path:
        return f"The portal URL {url} is a bare host, not a SCIM base URL. {expected}"
    last = path.rsplit("/", 1)[-1]
    if last.lower() in _SCIM_ENDPOINTS:
        return (
            f"The portal URL {url} names the /{last} endpoint; give the base URL it hangs "
            f"under ({url.rstrip('/')[: -len(last) - 1]}). {expected}"
        )
    return None


def portal_error_hint(exc: SkolsynkError, tenant: Any) -> str:
    """For an error about a tenant's portal: which URL was used and what was expected; else "".

    ``tenant`` is the registered tenant the command acted on (``None`` when there is none).
    """
    about_portal = isinstance(exc, (PortalUnavailable, PortalAuthError, PortalRequestError)) or (
        isinstance(exc, (NotFound, ConflictError)) and "portal" in str(exc)
    )
    if tenant is None or not about_portal:
        return ""
    environment = tenant.environment
    url = tenant.portals[environment].url if environment in tenant.portals else ""
    change = f"`skolsynk tenant set {tenant.id} --{environment}-portal URL`"
    if isinstance(exc, PortalAuthError):
        return f"The {environment} portal is {url}. {exc.hint}"
    if isinstance(exc, PortalUnavailable):
        return f"Check that the {environment} portal answers at {url}, or change it with {change}."
    problem = portal_url_problem(url) or (
        f"The {environment} portal is {url}. "
        f"Expected a SCIM base URL such as {SCIM_BASE_URL_EXAMPLE}."
    )
    return f"{problem} Change it with {change}."


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, default=str)


def to_csv(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(headers)
    for row in rows:
        writer.writerow(["" if c is None else c for c in row])
    return buffer.getvalue()


class ProgressBar:
    """A progress display on stderr: a redrawn bar on a terminal, a line per tenth elsewhere."""

    WIDTH = 30

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.last_tenth = -1
        self.last_draw = 0.0
        self.phase = ""

    def status(self, message: str) -> None:
        with self.lock:
            self._clear()
            print(message + "…", file=self.stream, flush=True)

    def __call__(self, phase: str, done: int, total: int) -> None:
        with self.lock:
            share = done / total if total else 1.0
            if self.tty:
                now = time.monotonic()
                if done < total and now - self.last_draw < 0.1 and phase == self.phase:
                    return
                self.last_draw = now
                filled = int(share * self.WIDTH)
                bar = "█" * filled + "░" * (self.WIDTH - filled)
                self.stream.write(f"\r  {bar} {done:>7}/{total:<7} {share:5.0%}  {phase:<16}")
                self.stream.flush()
            else:
                tenth = int(share * 10)
                if tenth != self.last_tenth:
                    self.last_tenth = tenth
                    print(f"  {done}/{total} changes ({share:.0%}), {phase}", file=self.stream)
            self.phase = phase

    def finish(self) -> None:
        with self.lock:
            self._clear()

    def _clear(self) -> None:
        if self.tty and self.last_draw:
            self.stream.write("\r" + " " * 80 + "\r")
            self.stream.flush()
            self.last_draw = 0.0
