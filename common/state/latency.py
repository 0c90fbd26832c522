"""How long recent real-time changes took, from the notification reaching Skolsynk to the
portal written: a short list per tenant in Redis, for the admin app's dashboard.

The worker records a real-time run that wrote to the portal when it ends (``worker.jobs``):
the moment its job was made (the listener's enqueue, which is when the notification arrived;
rq keeps it across its retries), or the moment a job queued again for the same change carries
(``RECEIVED_AT_META``: the object was busy, or Graph did not show it yet), and the moment the
run ended. Only the last
``LATENCY_KEEP`` runs of a tenant are kept (``LPUSH`` then ``LTRIM``), so the list stays small
however busy the school is, and it lapses with the tenant's silence (``LATENCY_TTL_SECONDS``).

Failure policy: Redis failures raise ``QueueUnavailable`` (``redis_errors``); a record that
cannot be read (written by another release) is left out.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import redis

from common.state.store import KEY_PREFIX, redis_errors

#: the runs kept per tenant, newest first
LATENCY_KEEP: Final = 50
#: a tenant with no real-time change for this long has no recent latency to show
LATENCY_TTL_SECONDS: Final = 30 * 24 * 3600


#: the job meta that carries when the change first reached Skolsynk, on a job queued again for
#: it (the object was busy, or Graph did not show it yet): its own creation is later
RECEIVED_AT_META: Final = "received_at"


def latency_key(tenant_id: str) -> str:
    return f"{KEY_PREFIX}latency:{tenant_id}"


def received_at(meta: Mapping[str, Any], created_at: datetime | None) -> datetime | None:
    """When a job's change reached Skolsynk: the time a requeued job carries, else when the
    job was made (the listener's enqueue)."""
    carried = meta.get(RECEIVED_AT_META)
    if isinstance(carried, str):
        try:
            return datetime.fromisoformat(carried)
        except ValueError:
            pass
    return created_at


def received_meta(received: datetime | None) -> dict[str, str]:
    """The meta of a job queued again for a change that reached Skolsynk at ``received``."""
    return {RECEIVED_AT_META: received.astimezone(UTC).isoformat()} if received else {}


@dataclass(frozen=True)
class ChangeLatency:
    """One real-time run: when its change arrived, when the portal was written, what kind."""

    kind: str
    received_at: datetime
    written_at: datetime
    writes: int

    @property
    def seconds(self) -> float:
        # clocks of the listener's and the worker's machines may differ a little
        return max(0.0, (self.written_at - self.received_at).total_seconds())


@dataclass(frozen=True)
class LatencySummary:
    """The tenant's recent real-time runs: how many, their median, the slowest and when."""

    count: int
    median_seconds: float
    slowest: ChangeLatency
    latest: ChangeLatency


class LatencyStore:
    """The last ``LATENCY_KEEP`` real-time runs of each tenant."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis: Any = client

    def record(self, tenant_id: str, latency: ChangeLatency) -> None:
        raw = json.dumps(
            {
                "kind": latency.kind,
                "received_at": latency.received_at.astimezone(UTC).isoformat(),
                "written_at": latency.written_at.astimezone(UTC).isoformat(),
                "writes": latency.writes,
            }
        )
        key = latency_key(tenant_id)
        with redis_errors(), self.redis.pipeline(transaction=True) as pipe:
            pipe.lpush(key, raw)
            pipe.ltrim(key, 0, LATENCY_KEEP - 1)
            pipe.expire(key, LATENCY_TTL_SECONDS)
            pipe.execute()

    def recent(self, tenant_id: str) -> list[ChangeLatency]:
        """The tenant's kept runs, newest first."""
        with redis_errors():
            raws: list[bytes] = self.redis.lrange(latency_key(tenant_id), 0, LATENCY_KEEP - 1)
        found = []
        for raw in raws:
            try:
                data = json.loads(raw)
                found.append(
                    ChangeLatency(
                        kind=str(data["kind"]),
                        received_at=datetime.fromisoformat(data["received_at"]),
                        written_at=datetime.fromisoformat(data["written_at"]),
                        writes=int(data["writes"]),
                    )
                )
            except (ValueError, KeyError, TypeError):
                continue
        return found

    def summary(self, tenant_id: str) -> LatencySummary | None:
        """Median and slowest of the tenant's kept runs; ``None`` when there are none."""
        runs = self.recent(tenant_id)
        if not runs:
            return None
        return LatencySummary(
            count=len(runs),
            median_seconds=statistics.median(r.seconds for r in runs),
            slowest=max(runs, key=lambda r: r.seconds),
            latest=runs[0],
        )
