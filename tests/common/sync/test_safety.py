from __future__ import annotations

import pytest
import redis

from common.model import (
    Action,
    ActionKind,
    MicrosoftState,
    MsUser,
    Plan,
    PortalState,
    PortalUser,
    Role,
    Thresholds,
)
from common.state.audit import AuditLog
from common.state.registry import Tenant
from common.sync.guard import decide
from common.sync.safety import SafetyState

TENANT = "tenant-1"


@pytest.fixture
def safety(redis_url: str) -> SafetyState:
    return SafetyState(redis.Redis.from_url(redis_url))


def ms_users(n: int) -> dict[str, MsUser]:
    return {
        f"u{i}": MsUser(f"u{i}", f"u{i}@x.se", None, "A", "B", "A B", True, Role.STUDENT)
        for i in range(n)
    }


def managed_portal(n: int) -> PortalState:
    users = tuple(
        PortalUser(f"p{i}", f"u{i}@x.se", f"u{i}", f"u{i}@x.se", "A", "B", "A B", True)
        for i in range(n)
    )
    return PortalState(users=users, groups=())


def test_empty_listing_with_managed_users_closes_the_gate(safety: SafetyState) -> None:
    state = MicrosoftState(users={}, classes={})
    assert safety.health_problem(TENANT, state, managed_portal(5), Thresholds())


def test_listing_much_smaller_than_last_good_closes_the_gate(safety: SafetyState) -> None:
    safety.remember_good(TENANT, MicrosoftState(users=ms_users(100), classes={}), 100)
    small = MicrosoftState(users=ms_users(40), classes={})
    problem = safety.health_problem(TENANT, small, managed_portal(100), Thresholds())
    assert problem is not None and "40" in problem and "100" in problem
    fine = MicrosoftState(users=ms_users(90), classes={})
    assert safety.health_problem(TENANT, fine, managed_portal(100), Thresholds()) is None


def test_the_facts_add_up_recent_removals_of_small_runs(safety: SafetyState) -> None:
    tenant = Tenant(TENANT, "Skolan", thresholds=Thresholds(max_removals=20))
    one = Plan(actions=(Action(ActionKind.DELETE_USER, "u0", "u0", "purged", portal_id="p0"),))
    for i in range(20):
        assert not decide(one, safety.facts(tenant, one, managed_portal(100))).mass_change
        safety.note_removals(TENANT, 1, f"run-{i}")
    facts = safety.facts(tenant, one, managed_portal(100))
    assert facts.recent_removals == 20 and decide(one, facts).mass_change


def test_the_facts_measure_against_the_last_full_reconciles_size(safety: SafetyState) -> None:
    tenant = Tenant(TENANT, "Skolan")
    safety.remember_good(TENANT, MicrosoftState(users=ms_users(100), classes={}), 100)
    facts = safety.facts(tenant, Plan(actions=()), managed_portal(3))
    assert (facts.managed_at_last_reconcile, facts.managed_seen, facts.managed) == (100, 3, 100)
    # a real-time run: no gate, whatever its few objects look like
    assert facts.gate is None and facts.foreign is None
    whole = safety.facts(
        tenant, Plan(actions=()), managed_portal(3), whole_read=MicrosoftState({}, {})
    )
    assert whole.gate is not None


def test_held_actions_are_listed_taken_and_gone(safety: SafetyState) -> None:
    actions = [
        Action(
            ActionKind.DEACTIVATE_USER,
            f"u{i}",
            f"user {i}",
            "soft-deleted",
            portal_id=f"p{i}",
            changes={"active": False},
        )
        for i in range(3)
    ]
    safety.hold(TENANT, actions, run_id="r1", why="reconcile")
    held = safety.held(TENANT)
    assert [h.action for h in held] == actions
    taken = safety.take(TENANT, ["deactivate_user:u1"])
    assert [h.action.object_id for h in taken] == ["u1"]
    with pytest.raises(KeyError, match="deactivate_user:u1"):
        safety.take(TENANT, ["deactivate_user:u1"])
    assert {h.action.object_id for h in safety.take(TENANT)} == {"u0", "u2"}
    assert safety.held(TENANT) == []


def test_audit_log_reads_back_entries_since_a_time(redis_url: str) -> None:
    audit = AuditLog(redis.Redis.from_url(redis_url))
    action = Action(
        ActionKind.UPDATE_USER,
        "u1",
        "Åsa Öberg",
        "name changed",
        portal_id="p1",
        changes={"givenName": "Åsa", "schools": ("S1", "S2")},
    )
    audit.record(TENANT, action, outcome="applied", why="notification", run_id="r1")
    entries = list(audit.entries(TENANT))
    assert len(entries) == 1
    entry = entries[0]
    assert entry["label"] == "Åsa Öberg"
    assert entry["changes"] == {"givenName": "Åsa", "schools": ["S1", "S2"]}
    assert entry["why"] == "notification" and entry["outcome"] == "applied"
    from datetime import UTC, datetime, timedelta

    assert list(audit.entries(TENANT, since=datetime.now(UTC) + timedelta(seconds=5))) == []
