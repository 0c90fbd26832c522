from __future__ import annotations

import pytest
import redis

from common.model import (
    Action,
    ActionKind,
    MicrosoftState,
    MsUser,
    PortalState,
    PortalUser,
    Role,
    Thresholds,
)
from common.state.audit import AuditLog
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


def test_guard_holds_only_above_both_count_and_share(safety: SafetyState) -> None:
    t = Thresholds(max_removals=20, max_removal_share=0.05)
    assert not safety.must_hold(TENANT, 20, 100, t)  # not more than 20
    assert safety.must_hold(TENANT, 21, 100, t)
    assert not safety.must_hold(TENANT, 21, 1000, t)  # 2.1 % of 1000


def test_guard_adds_up_recent_removals_of_small_runs(safety: SafetyState) -> None:
    t = Thresholds(max_removals=20, max_removal_share=0.05)
    for i in range(20):
        assert not safety.must_hold(TENANT, 1, 100, t)
        safety.note_removals(TENANT, 1, f"run-{i}")
    assert safety.must_hold(TENANT, 1, 100, t)


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
