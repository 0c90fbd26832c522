"""The guard step of a run: one decision over a plan, which actions are written, which are held
for a person and which are skipped, and why. Pure: no I/O, no clock; what the guards know
besides the plan (``GuardFacts``) is read by ``SafetyState.facts``.

The rules, in the order they win:

- Someone else's portal: a whole-tenant plan that would remove most of the portal's managed
  objects while creating most of Microsoft 365 anew is held whole (nothing is written, nothing
  put up for approval), whatever the thresholds say.
- Source-health gate: when the whole-tenant read looked unhealthy, no removal is made.
- Mass-change guard: removals above the tenant's thresholds (more than ``max_removals`` *and*
  more than ``max_removal_share`` of its managed objects, the recent removals of the window
  counted in) are held.
- Duplicates: the deletion of a copy is held unless a person approved it.
- Copies this very run made (``Plan.own_copy_ids``) are its own mistake: deleted past every guard.

One rule counts managed objects (``managed_in``); the size the mass-change guard measures
against is the larger of that count at the last full reconcile and in this run's read
(``GuardFacts.managed``: a real-time run sees a few objects, a full one all of them).

Failure policy: none needed; the guard trusts its facts.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.model import (
    ALWAYS_HELD_KINDS,
    Action,
    ActionKind,
    MicrosoftState,
    Plan,
    PortalState,
    Thresholds,
)

#: a plan removing more than this share of the portal's managed objects while creating more
#: than this share of Microsoft 365 anew looks like a portal that holds another tenant's objects
FOREIGN_PORTAL_SHARE = 0.5
#: ...once it would remove at least this many (one stray test object is no pattern)
FOREIGN_PORTAL_MIN_REMOVALS = 2
_CREATES = (ActionKind.CREATE_USER, ActionKind.CREATE_GROUP)


def managed_in(portal: PortalState) -> int:
    """Managed objects (users and groups with an ``externalId``) in what a run read."""
    return sum(1 for u in portal.users if u.managed) + sum(1 for g in portal.groups if g.managed)


@dataclass(frozen=True)
class GuardFacts:
    """What the guards know besides the plan."""

    thresholds: Thresholds
    #: managed portal objects counted at the last full reconcile, and in this run's read
    managed_at_last_reconcile: int = 0
    managed_seen: int = 0
    #: removals made within the rolling window by earlier runs
    recent_removals: int = 0
    #: why removals must not happen (the source-health gate), if they must not
    gate: str | None = None
    #: why the whole plan must be held as aimed at someone else's portal, if it must
    foreign: str | None = None
    tenant_id: str = ""
    #: a person approved the plan's removals
    approved: bool = False

    @property
    def managed(self) -> int:
        """The size the mass-change guard measures removals against."""
        return max(self.managed_at_last_reconcile, self.managed_seen)


@dataclass(frozen=True)
class Decision:
    """What the guards let through, in the plan's order, and what they set aside and why."""

    apply: tuple[Action, ...]
    held: tuple[Action, ...] = ()
    #: the audit log's word for why they are held ("duplicate", "mass-change guard")
    held_why: str = ""
    skipped: tuple[Action, ...] = ()
    skipped_why: str = ""
    #: the run's outcome and sentence as the guards leave them ("ok", "held", "gated")
    outcome: str = "ok"
    message: str = ""
    #: the mass-change guard trips on this plan (whether or not another guard won)
    mass_change: bool = False
    #: nothing at all is written (someone else's portal)
    held_whole: bool = False
    #: removals let through that count in the rolling window (a run's own copies do not)
    removals: int = 0


def decide(plan: Plan, facts: GuardFacts) -> Decision:
    """The guards' decision over ``plan``; see the module docstring for the rules."""
    removals = [a for a in plan.removals if a.portal_id not in plan.own_copy_ids]
    mass_change = not facts.approved and exceeds_thresholds(len(plan.removals), facts)
    if facts.foreign:
        return Decision(
            (),
            outcome="held",
            message=f"Held whole, nothing was written: {facts.foreign}. Check the portal URL "
            f"with `skolsynk tenant show {facts.tenant_id}`.",
            mass_change=mass_change,
            held_whole=True,
        )
    if facts.gate:
        return Decision(
            _without(plan, removals),
            skipped=tuple(removals),
            skipped_why=facts.gate,
            outcome="gated",
            message=f"Removals skipped: {facts.gate}.",
            mass_change=mass_change,
        )
    if mass_change:
        return _holding(
            plan,
            removals,
            "mass-change guard",
            f"{len(removals)} deactivations and deletions are held for approval "
            f"(more than the tenant's threshold).",
            mass_change=True,
        )
    duplicates = [] if facts.approved else [a for a in removals if a.kind in ALWAYS_HELD_KINDS]
    if duplicates:
        return _holding(
            plan,
            duplicates,
            "duplicate",
            f"{len(duplicates)} duplicate portal objects are held for approval "
            f"(they may carry licences).",
            removals=len(removals) - len(duplicates),
        )
    return Decision(plan.actions, removals=len(removals))


def _holding(
    plan: Plan,
    held: list[Action],
    why: str,
    message: str,
    *,
    mass_change: bool = False,
    removals: int = 0,
) -> Decision:
    """The decision that writes the plan but ``held``, held for a person's approval."""
    return Decision(
        _without(plan, held),
        held=tuple(held),
        held_why=why,
        outcome="held",
        message=message,
        mass_change=mass_change,
        removals=removals,
    )


def _without(plan: Plan, aside: list[Action]) -> tuple[Action, ...]:
    """The plan's actions but those set ``aside``, in the plan's order."""
    ids = {id(a) for a in aside}
    return tuple(a for a in plan.actions if id(a) not in ids)


def exceeds_thresholds(removals: int, facts: GuardFacts) -> bool:
    """Whether ``removals`` more, on top of the recent ones, exceed the tenant's thresholds."""
    if removals == 0:
        return False
    total = removals + facts.recent_removals
    t = facts.thresholds
    return total > t.max_removals and total > t.max_removal_share * max(facts.managed, 1)


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
