"""Structured logs: one JSON object per line, with context bound for a job or a request.

``bind_job_context(tenant=..., object_id=..., job=...)`` binds fields that every later log line
of this thread or task carries. Never pass tokens, secrets, client state or whole payloads.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "skolsynk_log_context", default=None
)

#: attributes every LogRecord has; anything else came in through ``extra=``
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


def bind_job_context(**fields: Any) -> None:
    """Add fields to every following log line of this context (thread, job, request)."""
    _context.set({**(_context.get() or {}), **{k: v for k, v in fields.items() if v is not None}})


def clear_context() -> None:
    _context.set(None)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, event, bound context and extras."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        data.update(_context.get() or {})
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                data[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            data["error"] = f"{record.exc_info[0].__name__}: {record.exc_info[1]}"
        return json.dumps(data, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """For people at a terminal: time, level, event, then the context as key=value."""

    def format(self, record: logging.LogRecord) -> str:
        context = {**(_context.get() or {})}
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                context[key] = value
        tail = " ".join(f"{k}={v}" for k, v in context.items())
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%H:%M:%S")
        line = f"{stamp} {record.levelname.lower():7} {record.getMessage()}"
        return f"{line}  {tail}" if tail else line


def configure_logging(*, fmt: str = "json", level: int = logging.INFO) -> None:
    """Send Skolsynk's logs to stderr in the chosen format (call once per process)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)
