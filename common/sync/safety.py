"""The safety guards of a run: the source-health gate, the mass-change guard, held actions.

- Source-health gate: a run whose Microsoft listing was incomplete, empty while the portal has
  managed users, or much smaller than the last good one makes no deactivations or deletions.
- Mass-change guard: deactivations and deletions above a tenant's thresholds (more than
  ``max_removals`` and more than ``max_removal_share`` of its managed objects, counted over a
  rolling window so that many small real-time jobs add up like one big run) are held.
- Held actions wait per tenant until a person approves or rejects them.

Failure policy: Redis failures raise ``QueueUnavailable``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from common.model import Action, MicrosoftState, PortalState, Thresholds, action_from_dict
from common.model import action_to_dict as _action_to_dict
from common.state.store import KEY_PREFIX, redis_errors

#: removals by real-time jobs and reconciles within this window count together
REMOVAL_WINDOW_SECONDS = 15 * 60


def _held_key(tenant_id: str) -> str:
    return f"{KEY_PREFIX}held:{tenant_id}"


def _removals_key(tenant_id: str) -> str:
    return f"{KEY_PREFIX}removals:{tenant_id}"


def _last_good_key(tenant_id: str) -> str:
    return f"{KEY_PREFIX}last-good:{tenant_id}"


def _managed_count_key(tenant_id: str) -> str:
    return f"{KEY_PREFIX}managed-count:{tenant_id}"


@dataclass(frozen=True)
class HeldAction:
    """An action waiting for a person's decision."""

    action: Action
    held_at: str
    run_id: str
    why: str


class SafetyState:
    """Per-tenant safety state in Redis: held actions, recent removals, last good counts."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis: Any = client

    # --- source health ---------------------------------------------------------------------

    def health_problem(
        self, tenant_id: str, microsoft: MicrosoftState, portal: PortalState, thresholds: Thresholds
    ) -> str | None:
        """Why removals must not happen in this whole-tenant run, or ``None`` when healthy."""
        in_scope = len(microsoft.users)
        managed = sum(1 for u in portal.users if u.managed)
        if in_scope == 0 and managed > 0:
            return (
                f"Microsoft 365 listed no students or teachers in scope, "
                f"but the portal has {managed} managed users"
            )
        with redis_errors():
            raw = self.redis.get(_last_good_key(tenant_id))
        if raw:
            last_good = int(json.loads(raw)["users"])
            if last_good and in_scope < last_good * (1 - thresholds.max_shrink_share):
                return (
                    f"Microsoft 365 listed {in_scope} students and teachers in scope, far fewer "
                    f"than the {last_good} of the last good run"
                )
        return None

    def remember_good(self, tenant_id: str, microsoft: MicrosoftState, managed: int) -> None:
        """Store the size of a healthy listing, the yardstick of the next runs."""
        with redis_errors():
            pipe = self.redis.pipeline(transaction=False)
            pipe.set(
                _last_good_key(tenant_id),
                json.dumps({"users": len(microsoft.users), "classes": len(microsoft.classes)}),
            )
            pipe.set(_managed_count_key(tenant_id), managed)
            pipe.execute()

    def managed_count(self, tenant_id: str) -> int:
        """Managed portal objects at the last full run (0 when unknown)."""
        with redis_errors():
            raw = self.redis.get(_managed_count_key(tenant_id))
        return int(raw) if raw else 0

    # --- mass-change guard -------------------------------------------------------------------

    def must_hold(
        self, tenant_id: str, removals: int, managed: int, thresholds: Thresholds
    ) -> bool:
        """Whether ``removals`` more, on top of the recent ones, exceed the thresholds."""
        if removals == 0:
            return False
        total = removals + self.recent_removals(tenant_id)
        return total > thresholds.max_removals and total > thresholds.max_removal_share * max(
            managed, 1
        )

    def recent_removals(self, tenant_id: str) -> int:
        now = time.time()
        key = _removals_key(tenant_id)
        with redis_errors():
            pipe = self.redis.pipeline(transaction=False)
            pipe.zremrangebyscore(key, 0, now - REMOVAL_WINDOW_SECONDS)
            pipe.zrange(key, 0, -1)
            _, members = pipe.execute()
        return sum(int(m.split(b":")[0]) for m in members)

    def note_removals(self, tenant_id: str, count: int, run_id: str) -> None:
        if count <= 0:
            return
        with redis_errors():
            pipe = self.redis.pipeline(transaction=False)
            pipe.zadd(_removals_key(tenant_id), {f"{count}:{run_id}": time.time()})
            pipe.expire(_removals_key(tenant_id), REMOVAL_WINDOW_SECONDS * 2)
            pipe.execute()

    # --- held actions --------------------------------------------------------------------------

    def hold(self, tenant_id: str, actions: list[Action], *, run_id: str, why: str) -> None:
        if not actions:
            return
        held_at = datetime.now(UTC).isoformat(timespec="seconds")
        with redis_errors():
            self.redis.hset(
                _held_key(tenant_id),
                mapping={
                    a.key: json.dumps(
                        {
                            "action": _action_to_dict(a),
                            "held_at": held_at,
                            "run_id": run_id,
                            "why": why,
                        },
                        ensure_ascii=False,
                    )
                    for a in actions
                },
            )

    def held(self, tenant_id: str) -> list[HeldAction]:
        """Held actions of a tenant, oldest first."""
        with redis_errors():
            raw = self.redis.hgetall(_held_key(tenant_id))
        items = [self._decode(v) for v in raw.values()]
        return sorted(items, key=lambda h: (h.held_at, h.action.key))

    def take(self, tenant_id: str, keys: list[str] | None = None) -> list[HeldAction]:
        """Remove and return the held actions with these keys (all when ``None``).

        Raises ``KeyError`` naming the keys that are not held.
        """
        key = _held_key(tenant_id)
        with redis_errors():
            if keys is None:
                pipe = self.redis.pipeline()
                pipe.hgetall(key)
                pipe.delete(key)
                raw, _ = pipe.execute()
                return sorted(
                    (self._decode(v) for v in raw.values()),
                    key=lambda h: (h.held_at, h.action.key),
                )
            values = self.redis.hmget(key, keys)
            missing = [k for k, v in zip(keys, values, strict=True) if v is None]
            if missing:
                raise KeyError(", ".join(missing))
            self.redis.hdel(key, *keys)
        return [self._decode(v) for v in values]

    @staticmethod
    def _decode(raw: bytes | str) -> HeldAction:
        data = json.loads(raw)
        return HeldAction(
            action=action_from_dict(data["action"]),
            held_at=data["held_at"],
            run_id=data["run_id"],
            why=data["why"],
        )
