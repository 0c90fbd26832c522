"""The live progress of runs people started and watch (the admin app's progress bar).

One hash per run in Redis, so that any admin process can read what another one started:
``status`` (a sentence while reading), ``phase``, ``done``, ``total``, ``state`` (``running``,
``finished`` or ``failed``), ``message``, and the run's ``report`` (JSON) once finished. Kept a
day, then forgotten.

Failure policy: Redis failures raise ``QueueUnavailable`` (``redis_errors``); an unknown run id
reads as ``None``.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import redis

from common.state.store import KEY_PREFIX, redis_errors

PROGRESS_TTL_SECONDS = 24 * 3600
#: a progress write at most this often per run (the applier reports every action)
PROGRESS_WRITE_INTERVAL_SECONDS = 0.2


def _key(progress_id: str) -> str:
    return f"{KEY_PREFIX}progress:{progress_id}"


def _current_key(tenant_id: str) -> str:
    return f"{KEY_PREFIX}progress-current:{tenant_id}"


class ProgressStore:
    """Progress of watched runs, by an id of their own (the run id exists only once it ends)."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis: Any = client
        self._last_write: dict[str, float] = {}

    def start(self, tenant_id: str, *, environment: str) -> str:
        """A new progress record for a run of ``tenant_id``; returns its id."""
        progress_id = secrets.token_urlsafe(12)
        with redis_errors():
            pipe = self.redis.pipeline()
            pipe.hset(
                _key(progress_id),
                mapping={
                    "tenant_id": tenant_id,
                    "environment": environment,
                    "state": "running",
                    "status": "",
                    "phase": "",
                    "done": 0,
                    "total": 0,
                    "message": "",
                    "report": "",
                    "started": time.time(),
                },
            )
            pipe.expire(_key(progress_id), PROGRESS_TTL_SECONDS)
            pipe.set(_current_key(tenant_id), progress_id, ex=PROGRESS_TTL_SECONDS)
            pipe.execute()
        return progress_id

    def status(self, progress_id: str, sentence: str) -> None:
        with redis_errors():
            self.redis.hset(_key(progress_id), "status", sentence)

    def advance(self, progress_id: str, phase: str, done: int, total: int) -> None:
        """Record ``done`` of ``total`` actions; written at most every few tenths of a second."""
        now = time.monotonic()
        if done < total and now - self._last_write.get(progress_id, 0.0) < (
            PROGRESS_WRITE_INTERVAL_SECONDS
        ):
            return
        self._last_write[progress_id] = now
        with redis_errors():
            self.redis.hset(
                _key(progress_id), mapping={"phase": phase, "done": done, "total": total}
            )

    def finish(self, progress_id: str, report: dict[str, Any] | None, *, message: str = "") -> None:
        """The run ended: with its report, or (``report`` None) failed with ``message``."""
        self._last_write.pop(progress_id, None)
        with redis_errors():
            self.redis.hset(
                _key(progress_id),
                mapping={
                    "state": "finished" if report is not None else "failed",
                    "message": message,
                    "report": json.dumps(report) if report is not None else "",
                },
            )

    def get(self, progress_id: str) -> dict[str, Any] | None:
        """The progress record, with ``percent`` (0-100), or ``None`` when unknown."""
        with redis_errors():
            raw = self.redis.hgetall(_key(progress_id))
        if not raw:
            return None
        data = {k.decode(): v.decode() for k, v in raw.items()}
        done, total = int(data["done"] or 0), int(data["total"] or 0)
        finished = data["state"] != "running"
        percent = 100 if finished else (done * 100 // total if total else 0)
        return {
            **data,
            "done": done,
            "total": total,
            "percent": percent,
            "report": json.loads(data["report"]) if data["report"] else None,
        }

    def current(self, tenant_id: str) -> str | None:
        """The id of the tenant's latest watched run, if there is one."""
        with redis_errors():
            raw = self.redis.get(_current_key(tenant_id))
        return raw.decode() if raw is not None else None
