"""Held actions in Redis: removals the guards (``common.sync.guard``) held, waiting
per tenant until a person approves or rejects them. The listener's metrics read them here.

Failure policy: Redis failures raise ``QueueUnavailable``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from common.model import Action, action_from_dict
from common.model import action_to_dict as _action_to_dict
from common.state.store import KEY_PREFIX, redis_errors


def _held_key(tenant_id: str) -> str:
    return f"{KEY_PREFIX}held:{tenant_id}"


@dataclass(frozen=True)
class HeldAction:
    """An action waiting for a person's decision."""

    action: Action
    held_at: str
    run_id: str
    why: str


class HeldActions:
    """The held actions of every tenant."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis: Any = client

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
