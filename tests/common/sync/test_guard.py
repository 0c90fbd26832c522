"""The guard step: one pure decision over a plan (which actions are written, held or skipped,
and why), one case per rule."""

from __future__ import annotations

from common.model import (
    Action,
    ActionKind,
    Plan,
    PortalGroup,
    PortalState,
    PortalUser,
    Thresholds,
)
from common.sync.guard import GuardFacts, decide, managed_in

K = ActionKind
THRESHOLDS = Thresholds(max_removals=20, max_removal_share=0.05)


def removal(n: int, kind: ActionKind = K.DEACTIVATE_USER) -> Action:
    return Action(kind, f"u{n}", f"user {n}", "gone", portal_id=f"p{n}")


def plan_of(*actions: Action, own: frozenset[str] = frozenset()) -> Plan:
    return Plan(actions=actions, own_copy_ids=own)


CREATE = Action(K.CREATE_USER, "new", "new@x.se", "new in scope")


def facts(**kw: object) -> GuardFacts:
    return GuardFacts(THRESHOLDS, **kw)  # type: ignore[arg-type]


def test_a_plan_within_the_thresholds_is_written_whole() -> None:
    plan = plan_of(CREATE, *(removal(n) for n in range(20)))
    decision = decide(plan, facts(managed_seen=100))
    assert decision.apply == plan.actions
    assert (decision.held, decision.skipped, decision.outcome) == ((), (), "ok")
    assert decision.removals == 20


def test_removals_are_held_only_above_both_the_count_and_the_share() -> None:
    many = plan_of(CREATE, *(removal(n) for n in range(21)))
    held = decide(many, facts(managed_seen=100))
    assert held.outcome == "held" and held.mass_change
    assert held.apply == (CREATE,) and len(held.held) == 21
    assert held.held_why == "mass-change guard" and held.removals == 0
    assert "21 deactivations and deletions are held" in held.message
    # 21 of 1000 is 2.1 %, under the share
    assert decide(many, facts(managed_seen=1000)).apply == many.actions


def test_recent_removals_of_other_runs_count_in() -> None:
    one = plan_of(removal(0))
    assert not decide(one, facts(managed_seen=100, recent_removals=19)).mass_change
    assert decide(one, facts(managed_seen=100, recent_removals=20)).mass_change


def test_the_tenant_size_is_the_larger_of_the_last_reconcile_and_this_read() -> None:
    many = plan_of(*(removal(n) for n in range(21)))
    # a real-time run sees a few objects; the last full reconcile counted 1000
    assert not decide(many, facts(managed_at_last_reconcile=1000, managed_seen=21)).mass_change
    assert not decide(many, facts(managed_at_last_reconcile=21, managed_seen=1000)).mass_change
    assert decide(many, facts(managed_at_last_reconcile=21, managed_seen=21)).mass_change


def test_a_closed_gate_skips_every_removal_and_wins_over_the_other_guards() -> None:
    plan = plan_of(CREATE, removal(0, K.DELETE_DUPLICATE_USER), *(removal(n) for n in range(1, 30)))
    decision = decide(plan, facts(managed_seen=100, gate="the listing was empty"))
    assert decision.apply == (CREATE,)
    assert len(decision.skipped) == 30 and decision.skipped_why == "the listing was empty"
    assert decision.held == () and decision.outcome == "gated"
    assert decision.message == "Removals skipped: the listing was empty."
    assert decision.mass_change  # still said, for the preview


def test_a_duplicate_is_held_unless_a_person_approved_it() -> None:
    copy = removal(0, K.DELETE_DUPLICATE_GROUP)
    plan = plan_of(CREATE, copy, removal(1))
    decision = decide(plan, facts(managed_seen=100))
    assert decision.apply == (CREATE, removal(1))
    assert decision.held == (copy,) and decision.held_why == "duplicate"
    assert decision.outcome == "held" and decision.removals == 1
    approved = decide(plan, facts(approved=True))
    assert approved.apply == plan.actions and approved.held == () and approved.removals == 2


def test_an_approval_is_not_held_by_the_mass_change_guard() -> None:
    plan = plan_of(*(removal(n) for n in range(50)))
    decision = decide(plan, facts(managed_seen=50, approved=True))
    assert decision.apply == plan.actions and not decision.mass_change


def test_a_copy_this_run_made_is_deleted_past_every_guard() -> None:
    own = removal(0, K.DELETE_DUPLICATE_USER)
    plan = plan_of(own, *(removal(n) for n in range(1, 30)), own=frozenset({"p0"}))
    for decision in (
        decide(plan, facts(managed_seen=30, gate="the listing was incomplete")),
        decide(plan, facts(managed_seen=30)),
    ):
        assert decision.apply == (own,)
        assert own not in decision.held and own not in decision.skipped
        assert decision.removals == 0


def test_a_plan_aimed_at_someone_elses_portal_is_held_whole() -> None:
    plan = plan_of(CREATE, removal(0))
    decision = decide(plan, facts(foreign="the portal belongs to another tenant", tenant_id="t1"))
    assert decision.held_whole and decision.apply == () and decision.held == ()
    assert decision.outcome == "held"
    assert decision.message.startswith("Held whole, nothing was written: the portal belongs")
    assert "skolsynk tenant show t1" in decision.message


def test_managed_objects_are_those_with_an_external_id() -> None:
    users = (
        PortalUser("p1", "a@x.se", "u1", "a@x.se", "A", "B", "A B", True),
        PortalUser("p2", "b@x.se", None, "b@x.se", "B", "C", "B C", True),
    )
    groups = (PortalGroup("g1", "7A", "c1", frozenset(), "s1"),)
    assert managed_in(PortalState(users=users, groups=groups)) == 2
