"""Which portal object the sync linked to each managed Microsoft 365 object, per tenant.

Written when the sync creates or adopts a portal object, forgotten when it deletes it for
good; read by every run so that, where the portal holds several objects with one
``externalId`` (duplicates), the one the sync linked before is the one kept
(``common.sync.duplicates``). One Redis hash per tenant, field ``{kind}:{entra id}`` (kind
``user`` or ``group``), value the portal id: about 80 bytes an object.

Failure policy: Redis failures raise ``QueueUnavailable`` (``redis_errors``); nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import redis

from common.model import link_key
from common.state.store import KEY_PREFIX, redis_errors

#: fields asked for per HMGET, so that one job's read stays one small round trip
FIELDS_PER_READ = 1000


class Links:
    """The links of every tenant, in Redis."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis: Any = client

    @staticmethod
    def _key(tenant_id: str) -> str:
        return f"{KEY_PREFIX}links:{tenant_id}"

    def all(self, tenant_id: str) -> dict[str, str]:
        """Every link of the tenant: ``link_key`` -> portal id."""
        with redis_errors():
            raw = self.redis.hgetall(self._key(tenant_id))
        return {_text(k): _text(v) for k, v in raw.items()}

    def some(self, tenant_id: str, keys: Iterable[str]) -> dict[str, str]:
        """The links among ``keys`` (``link_key`` values) that exist."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, str] = {}
        for start in range(0, len(wanted), FIELDS_PER_READ):
            part = wanted[start : start + FIELDS_PER_READ]
            with redis_errors():
                values = self.redis.hmget(self._key(tenant_id), part)
            found.update((k, _text(v)) for k, v in zip(part, values, strict=True) if v)
        return found

    def update(self, tenant_id: str, changes: Iterable[tuple[str, str, str, bool]]) -> None:
        """A run's link changes, in the order its writes ended, in two round trips at most.

        Each change is (kind, Entra id, portal id, linked): linked, the sync created or adopted
        the portal object; not linked, it deleted it, and the link goes unless another object
        holds it now."""
        changes = list(changes)
        key = self._key(tenant_id)
        doubtful = list(dict.fromkeys(link_key(k, e) for k, e, _, linked in changes if not linked))
        with redis_errors():
            values = self.redis.hmget(key, doubtful) if doubtful else []
        now = {f: _text(v) for f, v in zip(doubtful, values, strict=True) if v is not None}
        written: dict[str, str] = {}
        gone: set[str] = set()
        for kind, entra_id, portal_id, linked in changes:
            field = link_key(kind, entra_id)
            if linked:
                now[field] = written[field] = portal_id
                gone.discard(field)
            elif now.get(field) == portal_id:
                del now[field]
                written.pop(field, None)
                gone.add(field)
        if not written and not gone:
            return
        with redis_errors():
            pipe = self.redis.pipeline(transaction=False)
            if written:
                pipe.hset(key, mapping=written)
            if gone:
                pipe.hdel(key, *sorted(gone))
            pipe.execute()

    def drop(self, tenant_id: str) -> None:
        """Forget every link of the tenant (it is removed)."""
        with redis_errors():
            self.redis.delete(self._key(tenant_id))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
