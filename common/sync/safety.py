"""The safety guards of a run: the source-health gate, the mass-change guard, held actions.

- Source-health gate: a run whose Microsoft listing was incomplete, empty while the portal has
  managed users, or much smaller than the last good one makes no deactivations or deletions.
- Mass-change guard: deactivations and deletions above a tenant's thresholds (more than
  ``max_removals`` and more than ``max_removal_share`` of its managed objects, counted over a
  rolling window so that many small real-time jobs add up like one big run) are held.
- Held actions wait per tenant until a person approves or rejects them.
- Someone else's portal: a whole-tenant plan that would remove most of the portal's managed
  objects while creating most of Microsoft 365 anew (a portal organisation holding another
  tenant's people, or a wrong tenant id) is held whole, whatever the thresholds say.
- One rule for the tenant's size the guard measures against (``managed_objects``).

Failure policy: Redis failures raise ``QueueUnavailable``.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from common.model import (
    Action,
    ActionKind,
    MicrosoftState,
    Plan,
    PortalState,
    Thresholds,
)
from common.state.held import HeldAction, HeldActions
from common.state.store import KEY_PREFIX, redis_errors

#: removals by real-time jobs and reconciles within this window count together
REMOVAL_WINDOW_SECONDS = 15 * 60
#: a plan removing more than this share of the portal's managed objects while creating more
#: than this share of Microsoft 365 anew looks like a portal that holds another tenant's objects
FOREIGN_PORTAL_SHARE = 0.5
#: ...once it would remove at least this many (one stray test object is no pattern)
FOREIGN_PORTAL_MIN_REMOVALS = 2
_CREATES = (ActionKind.CREATE_USER, ActionKind.CREATE_GROUP)


def managed_in(portal: PortalState) -> int:
    """Managed objects (users and groups with an ``externalId``) in what a run read."""
    return sum(1 for u in portal.users if u.managed) + sum(1 for g in portal.groups if g.managed)


def foreign_portal_problem(
    tenant_name: str, plan: Plan, microsoft: MicrosoftState, portal: PortalState
) -> str | None:
    """Why a whole-tenant plan must be held whole as aimed at someone else's portal, or
    ``None``. Counted on the plan, not on thresholds, so small tenants are protected too."""
    managed = managed_in(portal)
    removals = len(plan.removals)
    creates = sum(1 for a in plan.actions if a.kind in _CREATES)
    in_microsoft = len(microsoft.users) + len(microsoft.classes)
    if (
        removals < FOREIGN_PORTAL_MIN_REMOVALS
        or removals <= FOREIGN_PORTAL_SHARE * managed
        or creates <= FOREIGN_PORTAL_SHARE * in_microsoft
    ):
        return None
    return (
        f"the plan would remove {removals} of the {managed} objects the portal holds for the "
        f"sync and create {creates} of the {in_microsoft} objects of {tenant_name}'s "
        "Microsoft 365 anew: the portal organisation most likely belongs to another tenant "
        "(or was registered under the wrong tenant id)"
    )


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

    def managed_objects(self, tenant_id: str, *, seen: int = 0) -> int:
        """The size the mass-change guard measures a tenant's removals against: its managed
        portal objects, the larger of the count at the last full reconcile and the ``seen``
        count of this run (a real-time run sees a few objects, a full one all of them)."""
        with redis_errors():
            raw = self.redis.get(_managed_count_key(tenant_id))
        return max(int(raw) if raw else 0, seen)

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
