"""What a run did, and the last run of each tenant kept in Redis for ``skolsynk status``."""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis

from common.state.store import KEY_PREFIX, redis_errors


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class RunReport:
    """The outcome of one run (a full reconcile, a real-time job or an approval)."""

    run_id: str
    tenant_id: str
    why: str
    started_at: str
    finished_at: str = ""
    dry_run: bool = False
    #: what the run ended as: ``ok`` (applied everything), ``held`` (removals wait for a
    #: person), ``gated`` (removals skipped by the source-health gate), ``partial`` (some
    #: actions failed), ``failed`` (nothing written: the run failed), ``preview``, ``skipped``
    #: (nothing done on purpose: a change for a disabled or removed tenant), ``unseen`` (the
    #: object was not found in Microsoft 365 yet)
    outcome: str = "ok"
    #: a sentence for a person when the run failed or was gated
    message: str = ""
    planned: dict[str, int] = field(default_factory=dict)
    applied: dict[str, int] = field(default_factory=dict)
    held: int = 0
    skipped: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    collisions: int = 0
    #: portal objects that share an ``externalId`` with the copy kept
    duplicates: int = 0
    microsoft_users: int = 0
    microsoft_classes: int = 0
    graph_requests: int = 0
    portal_writes: int = 0
    seconds: float = 0.0
    #: sentences on what the portal cannot hold or refused (once each per run)
    notes: list[str] = field(default_factory=list)
    #: the portal environment the run wrote to (``test`` or ``production``)
    environment: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunReport:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    @property
    def written(self) -> int:
        return sum(self.applied.values())


def _last_run_key(tenant_id: str, kind: str) -> str:
    return f"{KEY_PREFIX}last-run:{tenant_id}:{kind}"


class RunStore:
    """The last full reconcile and the last real-time job of each tenant."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis: Any = client

    def save(self, report: RunReport, *, kind: str = "reconcile") -> None:
        """Keep the run as the tenant's last of its kind, and of its kind in its environment."""
        raw = json.dumps(report.to_dict())
        with redis_errors():
            self.redis.set(_last_run_key(report.tenant_id, kind), raw)
            if report.environment:
                self.redis.set(_last_run_key(report.tenant_id, f"{kind}:{report.environment}"), raw)

    def last(
        self, tenant_id: str, *, kind: str = "reconcile", environment: str | None = None
    ) -> RunReport | None:
        """The tenant's last run of this kind (in this portal environment, when given)."""
        key = _last_run_key(tenant_id, f"{kind}:{environment}" if environment else kind)
        with redis_errors():
            raw = self.redis.get(key)
        return RunReport.from_dict(json.loads(raw)) if raw else None
