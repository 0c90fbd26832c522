"""The guard state of a run in Redis, and the facts the guard step (``common.sync.guard``)
decides on: the source-health gate, the size of the tenant and its recent removals, held
actions.

- Source-health gate: a run whose Microsoft listing was incomplete, empty while the portal has
  managed users, or much smaller than the last good one makes no deactivations or deletions.
- Mass-change guard: removals count over a rolling window (``note_removals``), so that many
  small real-time jobs add up like one big run; the managed count of the last full reconcile is
  kept (``remember_good``) as the size real-time runs measure against.
- Held actions wait per tenant until a person approves or rejects them.

The rules themselves are ``common.sync.guard``'s; this module only reads and writes state.

Failure policy: Redis failures raise ``QueueUnavailable``.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from common.model import Action, MicrosoftState, Plan, PortalState, Thresholds
from common.state.held import HeldAction, HeldActions
from common.state.registry import Tenant
from common.state.store import KEY_PREFIX, redis_errors
from common.sync.guard import GuardFacts, foreign_portal_problem, managed_in

#: removals by real-time jobs and reconciles within this window count together
REMOVAL_WINDOW_SECONDS = 15 * 60


def _removals_key(tenant_id: str) -> str:
    return f"{KEY_PREFIX}removals:{tenant_id}"


def _last_good_key(tenant_id: str) -> str:
    return f"{KEY_PREFIX}last-good:{tenant_id}"


def _managed_count_key(tenant_id: str) -> str:
    return f"{KEY_PREFIX}managed-count:{tenant_id}"


class SafetyState:
    """Per-tenant safety state in Redis: held actions, recent removals, last good counts."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis: Any = client
        self.held_actions = HeldActions(client)

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

    def facts(
        self,
        tenant: Tenant,
        plan: Plan,
        portal: PortalState,
        *,
        whole_read: MicrosoftState | None = None,
    ) -> GuardFacts:
        """What the guard step needs besides the plan; with ``whole_read`` (a whole-tenant
        read), also the source-health gate and whether the portal looks like someone else's."""
        gate = foreign = None
        if whole_read is not None:
            gate = self.health_problem(tenant.id, whole_read, portal, tenant.thresholds)
            foreign = foreign_portal_problem(tenant.name, plan, whole_read, portal)
        with redis_errors():
            raw = self.redis.get(_managed_count_key(tenant.id))
        return GuardFacts(
            tenant.thresholds,
            managed_at_last_reconcile=int(raw) if raw else 0,
            managed_seen=managed_in(portal),
            recent_removals=self.recent_removals(tenant.id) if plan.removals else 0,
            gate=gate,
            foreign=foreign,
            tenant_id=tenant.id,
        )

    # --- mass-change guard -------------------------------------------------------------------

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

    # --- held actions (kept in common.state.held) -------------------------------------------

    def hold(self, tenant_id: str, actions: list[Action], *, run_id: str, why: str) -> None:
        self.held_actions.hold(tenant_id, actions, run_id=run_id, why=why)

    def held(self, tenant_id: str) -> list[HeldAction]:
        """Held actions of a tenant, oldest first."""
        return self.held_actions.held(tenant_id)

    def take(self, tenant_id: str, keys: list[str] | None = None) -> list[HeldAction]:
        """Remove and return the held actions with these keys (all when ``None``); ``KeyError``
        names the keys that are not held."""
        return self.held_actions.take(tenant_id, keys)
