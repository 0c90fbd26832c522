"""The audit log: every change written to the portal, per tenant, kept for six months.

Each entry says when, which object, what changed, why (notification, reconcile, approval) and
how it ended (applied, held, rejected, failed, skipped). Stored in a Redis stream per tenant,
trimmed by age on every write.

Failure policy: Redis failures raise ``QueueUnavailable``; a write to the portal is never undone
because its audit entry could not be written, but the run then fails loudly.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import redis

from common.model import Action
from common.state.store import KEY_PREFIX, redis_errors

AUDIT_RETENTION = timedelta(days=183)
OUTCOMES = ("applied", "held", "approved", "rejected", "failed", "skipped")


def audit_key(tenant_id: str) -> str:
    return f"{KEY_PREFIX}audit:{tenant_id}"


class AuditLog:
    """Append and read audit entries."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis: Any = client

    def record(
        self,
        tenant_id: str,
        action: Action,
        *,
        outcome: str,
        why: str,
        run_id: str,
        detail: str = "",
        portal_id: str | None = None,
    ) -> None:
        """Append one entry; trims entries older than ``AUDIT_RETENTION``."""
        self.record_many(
            tenant_id,
            [(action, outcome, detail, portal_id)],
            why=why,
            run_id=run_id,
        )

    def record_many(
        self,
        tenant_id: str,
        entries: list[tuple[Action, str, str, str | None]],
        *,
        why: str,
        run_id: str,
    ) -> None:
        """Append several entries (action, outcome, detail, portal id) in one round trip."""
        if not entries:
            return
        now = datetime.now(UTC)
        min_id = f"{int((now - AUDIT_RETENTION).timestamp() * 1000)}-0"
        key = audit_key(tenant_id)
        with redis_errors():
            pipe = self.redis.pipeline(transaction=False)
            for action, outcome, detail, portal_id in entries:
                fields: dict[str, str] = {
                    "at": now.isoformat(timespec="milliseconds"),
                    "tenant": tenant_id,
                    "kind": action.kind.value,
                    "object_id": action.object_id,
                    "portal_id": portal_id or action.portal_id or "",
                    "label": action.label,
                    "changes": json.dumps(
                        {
                            k: list(v) if isinstance(v, tuple) else v
                            for k, v in action.changes.items()
                        },
                        ensure_ascii=False,
                    ),
                    "members": str(len(action.member_ids) + len(action.portal_member_ids)),
                    "reason": action.reason,
                    "why": why,
                    "outcome": outcome,
                    "run_id": run_id,
                    "detail": detail,
                }
                pipe.xadd(key, fields, minid=min_id, approximate=True)
            pipe.execute()

    def entries(
        self, tenant_id: str, *, since: datetime | None = None, limit: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Entries oldest first, from ``since`` on."""
        start = "-" if since is None else f"{int(since.timestamp() * 1000)}-0"
        key = audit_key(tenant_id)
        seen = 0
        while True:
            with redis_errors():
                batch = self.redis.xrange(key, min=start, max="+", count=1000)
            if not batch:
                return
            for entry_id, raw in batch:
                entry = {k.decode(): v.decode() for k, v in raw.items()}
                entry["id"] = entry_id.decode()
                entry["changes"] = json.loads(entry.get("changes") or "{}")
                yield entry
                seen += 1
                if limit is not None and seen >= limit:
                    return
            last = batch[-1][0].decode()
            start = "(" + last
