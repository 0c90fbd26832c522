"""Output for people: tables, progress bars and plain sentences; JSON and CSV for tools."""

from __future__ import annotations

import csv
import io
import json
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any, TextIO


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain text table with aligned columns."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


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
