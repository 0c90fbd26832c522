"""The audit log: every change written to the portal, per tenant, kept for six months.

Each entry says when, which object, what changed, why (notification, reconcile, approval), how
it ended (applied, held, rejected, failed, skipped) and, for membership changes, which members
(Entra id and e-mail). Stored in a Redis stream per tenant, trimmed by age on every write; the
e-mail of every user the log has seen is kept beside it, so that membership entries can name
their members (members are always users the sync wrote, and so recorded, before).

Failure policy: Redis failures raise ``QueueUnavailable``; a write to the portal is never undone
because its audit entry could not be written, but the run then fails loudly.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import redis

from common.model import Action, ActionKind
from common.state.store import KEY_PREFIX, redis_errors

AUDIT_RETENTION = timedelta(days=183)
MEMBER_KINDS = frozenset({ActionKind.ADD_MEMBERS, ActionKind.REMOVE_MEMBERS})
_PAGE = 1000


def audit_key(tenant_id: str) -> str:
    return f"{KEY_PREFIX}audit:{tenant_id}"


def people_key(tenant_id: str) -> str:
    """Entra user id -> the e-mail the audit log last saw for it."""
    return f"{KEY_PREFIX}audit-people:{tenant_id}"


def _user_email(action: Action) -> str | None:
    """The e-mail a user action names (its changes, else its label), if it is about a user."""
    if not action.kind.value.endswith("_user"):
        return None
    for name in ("email", "userName"):
        value = action.changes.get(name)
        if isinstance(value, str) and value:
            return value
    return action.label if "@" in action.label else None


def _entry_time(entry_id: str) -> str:
    """The time a stream entry was written, from its id (``<ms>-<seq>``), so that entries read
    in stream order are in time order even when concurrent writers computed their times apart."""
    millis = int(entry_id.split("-", 1)[0])
    return datetime.fromtimestamp(millis / 1000, UTC).isoformat(timespec="milliseconds")


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
        """Append several entries (action, outcome, detail, portal id) in few round trips."""
        if not entries:
            return
        now = datetime.now(UTC)
        min_id = f"{int((now - AUDIT_RETENTION).timestamp() * 1000)}-0"
        key = audit_key(tenant_id)
        emails = {
            action.object_id: email
            for action, *_ in entries
            if (email := _user_email(action)) is not None
        }
        member_ids = sorted(
            {m for action, *_ in entries if action.kind in MEMBER_KINDS for m in action.member_ids}
            - emails.keys()
        )
        with redis_errors():
            if emails:
                self.redis.hset(people_key(tenant_id), mapping=emails)
            if member_ids:
                known = self.redis.hmget(people_key(tenant_id), member_ids)
                emails |= {i: v.decode() for i, v in zip(member_ids, known, strict=True) if v}
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
                    "members": json.dumps(
                        [{"id": i, "email": emails.get(i, "")} for i in action.member_ids]
                        + [{"portal_id": p} for p in action.portal_member_ids],
                        ensure_ascii=False,
                    ),
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
        """Entries oldest first, from ``since`` on; with ``limit``, the newest ``limit`` of
        them (still oldest first)."""
        start = "-" if since is None else f"{int(since.timestamp() * 1000)}-0"
        key = audit_key(tenant_id)
        if limit is not None:
            with redis_errors():
                newest = self.redis.xrevrange(key, max="+", min=start, count=limit)
            yield from (_decode(entry_id, raw) for entry_id, raw in reversed(newest))
            return
        for batch in self._pages(key, start):
            yield from (_decode(entry_id, raw) for entry_id, raw in batch)

    def count(self, tenant_id: str, *, since: datetime, outcome: str) -> int:
        """How many entries from ``since`` on ended with ``outcome`` (nothing decoded)."""
        wanted = outcome.encode()
        start = f"{int(since.timestamp() * 1000)}-0"
        return sum(
            1
            for batch in self._pages(audit_key(tenant_id), start)
            for _, raw in batch
            if raw.get(b"outcome") == wanted
        )

    def _pages(self, key: str, start: str) -> Iterator[list[tuple[bytes, dict[bytes, bytes]]]]:
        """The stream from ``start`` on, oldest first, a page of raw entries at a time."""
        while True:
            with redis_errors():
                batch = self.redis.xrange(key, min=start, max="+", count=_PAGE)
            if not batch:
                return
            yield batch
            start = "(" + batch[-1][0].decode()


def _decode(entry_id: bytes, raw: dict[bytes, bytes]) -> dict[str, Any]:
    """One stored entry as people and tools read it: JSON values parsed, counts as numbers."""
    entry: dict[str, Any] = {k.decode(): v.decode() for k, v in raw.items()}
    entry["id"] = entry_id.decode()
    entry["at"] = _entry_time(entry["id"])
    entry["changes"] = json.loads(entry.get("changes") or "{}")
    members = entry.get("members") or "[]"
    # entries written before members were named hold only their count
    entry["members"] = [] if members.isdigit() else json.loads(members)
    entry["member_count"] = int(members) if members.isdigit() else len(entry["members"])
    return entry
