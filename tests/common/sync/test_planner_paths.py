"""One rule set for both paths, and duplicates, as planner tables (pure).

A real-time class job hands the planner the class with its members in scope (classified by
``source.read_class`` as a full read classifies them), the portal accounts it looked up, and
the Microsoft state of the members it had to read; a full reconcile hands it everything. For
the class, both must come out the same.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from common.model import (
    ALWAYS_HELD_KINDS,
    REMOVAL_KINDS,
    Action,
    ActionKind,
    MicrosoftState,
    MsClass,
    MsUser,
    Plan,
    PortalGroup,
    PortalState,
    PortalUser,
    oldest_first,
)
from common.sync.planner import ACTION_ORDER, PHASES, make_plan
from tests.common.sync.test_planner import group, in_portal, ms_user, unmanaged
from tests.common.sync.test_planner_properties import SimPortal, microsoft_states, portal_states

K = ActionKind
MEMBER_KINDS = (K.ADD_MEMBERS, K.REMOVE_MEMBERS)


def whole(
    users: list[MsUser],
    classes: list[MsClass],
    *,
    out_of_scope: set[str] = frozenset(),  # type: ignore[assignment]
    soft_deleted: set[str] = frozenset(),  # type: ignore[assignment]
) -> MicrosoftState:
    """What a full read returns: class members already the in-scope users among them."""
    in_scope = {u.id for u in users}
    return MicrosoftState(
        users={u.id: u for u in users},
        classes={
            c.id: MsClass(c.id, c.display_name, c.school_id, c.member_ids & in_scope)
            for c in classes
        },
        out_of_scope_user_ids=frozenset(out_of_scope),
        soft_deleted_user_ids=frozenset(soft_deleted),
    )


def class_job(full: MicrosoftState, class_id: str, portal: PortalState) -> MicrosoftState:
    """What ``engine.sync_group`` hands the planner for the same Microsoft 365: the class as
    read, plus the Microsoft state of each member without a linked portal account (read with
    ``read_user``) and of every object an e-mail holder of theirs is linked to."""
    cls = full.classes[class_id]
    linked = {u.external_id for u in portal.users if u.managed}
    newcomers = {m for m in cls.member_ids if m not in linked}
    addresses = {
        a.lower()
        for m in newcomers
        for a in (full.users[m].email, full.users[m].user_principal_name)
    }
    holders = {
        u.external_id
        for u in portal.users
        if u.managed and {(u.email or "").lower(), u.user_name.lower()} & addresses
    }
    spoken = newcomers | {h for h in holders if h}
    return MicrosoftState(
        users={m: full.users[m] for m in spoken if m in full.users},
        classes={class_id: cls},
        out_of_scope_user_ids=full.out_of_scope_user_ids & spoken,
        soft_deleted_user_ids=full.soft_deleted_user_ids & spoken,
        scope_user_ids=frozenset(spoken),
        scope_class_ids=frozenset({class_id}),
    )


def of_class(actions: tuple[Action, ...], class_id: str) -> list[tuple[Any, ...]]:
    return [
        (a.kind, a.member_ids, a.portal_member_ids)
        for a in actions
        if a.object_id == class_id and a.kind in MEMBER_KINDS
    ]


def agree(full: MicrosoftState, portal: PortalState, class_id: str) -> list[tuple[Any, ...]]:
    """The class's membership actions, asserted equal on both paths; returned for checks."""
    by_reconcile = of_class(make_plan(full, portal).actions, class_id)
    by_job = of_class(make_plan(class_job(full, class_id, portal), portal).actions, class_id)
    assert by_job == by_reconcile
    return by_reconcile


STUDENT, OTHER = ms_user("u-stina"), ms_user("u-olle")


def test_disabled_member_stays_in_the_class_on_both_paths() -> None:
    disabled = ms_user("u-dis", account_enabled=False)
    portal = PortalState(
        users=(in_portal(disabled, "p-dis"), in_portal(STUDENT, "p-st")),
        groups=(group("g1", "7A", {"p-dis", "p-st"}, "c1"),),
    )
    full = whole([disabled, STUDENT], [MsClass("c1", "7A", "s1", frozenset({"u-dis"}))])
    # Stina left: only she goes, the disabled member stays
    assert agree(full, portal, "c1") == [(K.REMOVE_MEMBERS, ("u-stina",), ())]


@pytest.mark.parametrize("gone", ["out_of_scope", "soft_deleted"])
def test_member_out_of_scope_or_in_the_recycle_bin_leaves_the_class_on_both_paths(
    gone: str,
) -> None:
    teacher = ms_user("u-t")
    portal = PortalState(
        users=(in_portal(teacher, "p-t"), in_portal(STUDENT, "p-st")),
        groups=(group("g1", "7A", {"p-t", "p-st"}, "c1"),),
    )
    # Microsoft 365 still lists the teacher as an owner; she is no student or teacher in scope
    # (another school, lost her role, in the recycle bin)
    cls = MsClass("c1", "7A", "s1", frozenset({"u-t", "u-stina"}))
    full = whole([STUDENT], [cls], **{gone: {"u-t"}})
    assert agree(full, portal, "c1") == [(K.REMOVE_MEMBERS, ("u-t",), ())]


def test_new_member_without_account_is_created_and_added_on_both_paths() -> None:
    portal = PortalState(
        users=(in_portal(STUDENT, "p-st"),), groups=(group("g1", "7A", {"p-st"}, "c1"),)
    )
    full = whole([STUDENT, OTHER], [MsClass("c1", "7A", "s1", frozenset({"u-stina", "u-olle"}))])
    assert agree(full, portal, "c1") == [(K.ADD_MEMBERS, ("u-olle",), ())]
    job = make_plan(class_job(full, "c1", portal), portal)
    assert [a.kind for a in job.actions] == [K.CREATE_USER, K.ADD_MEMBERS]


def test_new_member_adopts_by_e_mail_on_both_paths() -> None:
    existing = unmanaged("p-olle", OTHER.email.upper())
    portal = PortalState(users=(existing,), groups=(group("g1", "7A", set(), "c1"),))
    full = whole([OTHER], [MsClass("c1", "7A", "s1", frozenset({"u-olle"}))])
    assert agree(full, portal, "c1") == [(K.ADD_MEMBERS, ("u-olle",), ())]
    job = make_plan(class_job(full, "c1", portal), portal)
    assert [(a.kind, a.portal_id) for a in job.of_kind(K.ADOPT_USER)] == [(K.ADOPT_USER, "p-olle")]


def test_new_member_takes_over_the_account_of_a_deleted_and_recreated_person() -> None:
    # Olle was deleted for good and created again: the old managed account holds his e-mail
    old = in_portal(ms_user("u-olle-old", OTHER.email), "p-old")
    portal = PortalState(users=(old,), groups=(group("g1", "7A", {"p-old"}, "c1"),))
    full = whole([OTHER], [MsClass("c1", "7A", "s1", frozenset({"u-olle"}))])
    job = make_plan(class_job(full, "c1", portal), portal)
    by_reconcile = make_plan(full, portal)
    assert [(a.kind, a.portal_id) for a in job.of_kind(K.ADOPT_USER)] == [(K.ADOPT_USER, "p-old")]
    assert job.of_kind(K.ADOPT_USER) == by_reconcile.of_kind(K.ADOPT_USER)
    # the account is Olle's now: he stays in the class, nothing is added or removed
    assert agree(full, portal, "c1") == []


def test_guest_or_staff_member_never_joins_on_either_path() -> None:
    # the classification leaves guests and staff out of users and class members alike
    portal = PortalState(
        users=(in_portal(STUDENT, "p-st"),), groups=(group("g1", "7A", {"p-st"}, "c1"),)
    )
    full = whole(
        [STUDENT],
        [MsClass("c1", "7A", "s1", frozenset({"u-stina", "u-guest"}))],
        out_of_scope={"u-guest"},
    )
    assert agree(full, portal, "c1") == []


def test_class_without_a_teacher_syncs_its_students() -> None:
    full = whole([STUDENT], [MsClass("c1", "7A", "s1", frozenset({"u-stina"}))])
    plan = make_plan(full, PortalState((), ()))
    assert [a.kind for a in plan.actions] == [K.CREATE_USER, K.CREATE_GROUP, K.ADD_MEMBERS]


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(microsoft_states(), portal_states(), st.data())
def test_class_jobs_and_the_full_reconcile_plan_the_same_members(
    microsoft: MicrosoftState, state: PortalState, data: st.DataObject
) -> None:
    # any tenant, read whole: class members are its in-scope users (the source's contract);
    # Entra keeps user principal names and mail addresses unique within a tenant
    users = list(microsoft.users.values())
    addresses = [a.lower() for u in users for a in {u.user_principal_name, u.email}]
    assume(len(addresses) == len(set(addresses)))
    full = whole(
        users,
        list(microsoft.classes.values()),
        out_of_scope=set(microsoft.out_of_scope_user_ids),
        soft_deleted=set(microsoft.soft_deleted_user_ids),
    )
    # the same members end up in the portal group either way (a member may be named by its
    # Entra id on one path and by its portal id on the other: the write is the same)
    for class_id in sorted(full.classes):
        assert members_after(
            make_plan(class_job(full, class_id, state), state), state, class_id
        ) == (members_after(make_plan(full, state), state, class_id))


def members_after(plan: Plan, state: PortalState, class_id: str) -> set[str] | None:
    """The members of the class's portal group once the plan ran, by Entra id where the
    account has one (else by portal id)."""
    portal = SimPortal.of(state)
    portal.apply(plan)
    kept = sorted(
        (g for g in portal.groups.values() if g.external_id == class_id), key=oldest_first
    )
    if not kept:
        return None
    return {
        (portal.users[m].external_id or m) if m in portal.users else m for m in kept[0].member_ids
    }


# --- duplicates -------------------------------------------------------------------------------


def copy(user: MsUser, pid: str, created: str, **kw: Any) -> PortalUser:
    return in_portal(user, pid, created=created, **kw)


def test_duplicate_users_keep_the_oldest_bring_it_up_to_date_and_hold_the_others() -> None:
    kept = copy(STUDENT, "p-b", "2026-01-01T08:00:00.000Z", grade="5")
    younger = copy(STUDENT, "p-a", "2026-03-01T08:00:00.000Z")
    portal = PortalState(users=(younger, kept), groups=(group("g1", "7A", {"p-a"}, "c1"),))
    full = whole([STUDENT], [MsClass("c1", "7A", "s1", frozenset({"u-stina"}))])
    plan = make_plan(full, portal)
    assert [(a.kind, a.portal_id) for a in plan.actions] == [
        (K.UPDATE_USER, "p-b"),  # the grade, on the kept copy
        (K.ADD_MEMBERS, "g1"),  # the kept copy joins the class
        (K.REMOVE_MEMBERS, "g1"),  # the duplicate leaves it
        (K.DELETE_DUPLICATE_USER, "p-a"),
    ]
    assert plan.of_kind(K.REMOVE_MEMBERS)[0].portal_member_ids == ("p-a",)
    (duplicate,) = plan.duplicates
    assert (duplicate.kind, duplicate.kept_id, duplicate.duplicate_ids) == ("user", "p-b", ("p-a",))
    assert plan.of_kind(K.DELETE_DUPLICATE_USER)[0].kind in ALWAYS_HELD_KINDS & REMOVAL_KINDS


def test_duplicate_groups_keep_the_oldest_and_leave_the_others_alone_until_approved() -> None:
    portal = PortalState(
        users=(in_portal(STUDENT, "p-st"),),
        groups=(
            PortalGroup("g-new", "7A", "c1", frozenset(), "s1", created="2026-05-01T00:00:00Z"),
            PortalGroup("g-old", "7 A", "c1", frozenset(), "s1", created="2026-01-01T00:00:00Z"),
            PortalGroup("g-mid", "7A", "c1", frozenset({"p-st"}), "s1", created="2026-02-01"),
        ),
    )
    full = whole([STUDENT], [MsClass("c1", "7A", "s1", frozenset({"u-stina"}))])
    plan = make_plan(full, portal)
    assert [(a.kind, a.portal_id) for a in plan.actions] == [
        (K.UPDATE_GROUP, "g-old"),
        (K.ADD_MEMBERS, "g-old"),
        (K.DELETE_DUPLICATE_GROUP, "g-mid"),
        (K.DELETE_DUPLICATE_GROUP, "g-new"),
    ]
    assert len({a.key for a in plan.actions}) == len(plan.actions)  # one key per copy


def test_duplicates_are_planned_for_by_a_class_job_as_by_the_full_reconcile() -> None:
    portal = PortalState(
        users=(in_portal(STUDENT, "p-st"),),
        groups=(
            PortalGroup("g2", "7A", "c1", frozenset(), "s1", created="2026-02-01T00:00:00Z"),
            PortalGroup("g1", "7A", "c1", frozenset({"p-st"}), "s1", created="2026-01-01"),
        ),
    )
    full = whole([STUDENT], [MsClass("c1", "7A", "s1", frozenset({"u-stina"}))])
    job = make_plan(class_job(full, "c1", portal), portal)
    assert job.actions == make_plan(full, portal).actions
    assert [a.kind for a in job.actions] == [K.DELETE_DUPLICATE_GROUP]


def test_the_applier_runs_the_planners_phases_in_the_planners_order() -> None:
    assert tuple(k for _, kinds in PHASES for k in kinds) == ACTION_ORDER
    assert set(ACTION_ORDER) == set(ActionKind)
