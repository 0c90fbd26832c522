"""What Skolsynk learnt of each portal's SCIM server (filter forms, refused attributes), kept in
Redis so that a later run, in another process, does not try again what the server refused.

The portal client decides what the data means and when it is stale (``common.portal.learning``);
this module only keeps it, one JSON document per SCIM base URL, for ``MEMORY_TTL``.

Failure policy: Redis failures raise ``QueueUnavailable`` (``redis_errors``); a document that is
not JSON reads as nothing.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

import redis

from common.state.store import KEY_PREFIX, redis_errors

#: what was learnt of a server is forgotten after this long without a change
MEMORY_TTL = timedelta(days=30)


class PortalMemory:
    """``common.portal.learning.Memory`` in Redis."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis: Any = client

    @staticmethod
    def _key(base_url: str) -> str:
        return f"{KEY_PREFIX}portal-memory:{hashlib.sha256(base_url.encode()).hexdigest()}"

    def forget(self, base_url: str) -> int:
        """Forget what was learnt of this server; keys deleted."""
        with redis_errors():
            return int(self.redis.delete(self._key(base_url)))

    def load(self, key: str) -> dict[str, Any] | None:
        with redis_errors():
            raw = self.redis.get(self._key(key))
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def save(self, key: str, data: dict[str, Any]) -> None:
        with redis_errors():
            self.redis.set(self._key(key), json.dumps(data), ex=MEMORY_TTL)
