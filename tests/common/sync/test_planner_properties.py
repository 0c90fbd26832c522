"""Properties of the planner over generated tenants and portals (hypothesis).

``SimPortal`` below is a small pure stand-in for a SCIM portal that carries out a plan the way
the applier does (Entra ids mapped to portal ids through ``externalId``); it lives here, not in
product code, because it only has to be right enough to replan against.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.model import (
    ALWAYS_HELD_KINDS,
    REMOVAL_KINDS,
    ActionKind,
    MicrosoftState,
    MsClass,
    MsUser,
    Plan,
    PortalGroup,
    PortalState,
    PortalUser,
    Role,
    oldest_first,
)
from common.sync.planner import make_plan

K = ActionKind
USER_KINDS = {
    K.CREATE_USER,
    K.ADOPT_USER,
    K.UPDATE_USER,
    K.DEACTIVATE_USER,
    K.REACTIVATE_USER,
    K.DELETE_USER,
}

# small pools, so that e-mails, names and ids meet often
USER_IDS = [f"u{i}" for i in range(7)]
GONE_IDS = ["gone1", "gone2"]
CLASS_IDS = ["c1", "c2", "c3"]
EMAILS = ["anna@s.se", "Anna@S.se", "bo@s.se", "cilla@s.se", "BO@s.se", "dan@s.se"]
NAMES = [None, "", "Anna", "anna ", "Bo", "Cilla"]
SCHOOLS = ["s1", "s2"]


@dataclass
class SimPortal:
    """A pure SCIM portal: users and groups by portal id."""

    users: dict[str, PortalUser]
    groups: dict[str, PortalGroup]
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))

    @classmethod
    def of(cls, state: PortalState) -> SimPortal:
        return cls({u.id: u for u in state.users}, {g.id: g for g in state.groups})

    def state(self) -> PortalState:
        return PortalState(tuple(self.users.values()), tuple(self.groups.values()))

    def user_of(self, entra_id: str) -> str | None:
        """The account of a Microsoft user (the oldest, where the portal holds copies)."""
        users = sorted(self.users.values(), key=oldest_first)
        return next((u.id for u in users if u.external_id == entra_id), None)

    def group_of(self, entra_id: str) -> str:
        groups = sorted(self.groups.values(), key=oldest_first)
        return next(g.id for g in groups if g.external_id == entra_id)

    def apply(self, plan: Plan) -> None:
        for action in plan.actions:
            self.apply_one(action.kind, action.portal_id, action)

    def apply_one(self, kind: ActionKind, portal_id: str | None, action: Any) -> None:
        changes = dict(action.changes)
        if kind is K.CREATE_USER:
            pid = f"p{next(self.ids)}"
            self.users[pid] = self.set_user(
                PortalUser(pid, "", None, None, None, None, None, True), changes
            )
        elif kind in USER_KINDS - {K.CREATE_USER, K.DELETE_USER, K.DELETE_DUPLICATE_USER}:
            assert portal_id is not None
            self.users[portal_id] = self.set_user(self.users[portal_id], changes)
        elif kind in (K.DELETE_USER, K.DELETE_DUPLICATE_USER):
            assert portal_id is not None
            del self.users[portal_id]
            for gid, g in self.groups.items():  # the portal drops references to it
                self.groups[gid] = replace(g, member_ids=g.member_ids - {portal_id})
        elif kind is K.CREATE_GROUP:
            gid = f"g{next(self.ids)}"
            self.groups[gid] = PortalGroup(
                gid,
                changes["displayName"],
                changes["externalId"],
                frozenset(),
                changes.get("school"),
                changes.get("schoolName"),
            )
        elif kind is K.UPDATE_GROUP:
            assert portal_id is not None
            g = self.groups[portal_id]
            self.groups[portal_id] = replace(
                g,
                display_name=changes.get("displayName", g.display_name),
                school_id=changes.get("school", g.school_id),
                school_name=changes.get("schoolName", g.school_name),
            )
        elif kind in (K.DELETE_GROUP, K.DELETE_DUPLICATE_GROUP):
            assert portal_id is not None
            del self.groups[portal_id]
        elif kind is K.ADD_MEMBERS:
            gid = portal_id or self.group_of(action.object_id)
            members = {self.user_of(m) for m in action.member_ids}
            assert None not in members, "a member to add is not in the portal"
            g = self.groups[gid]
            self.groups[gid] = replace(g, member_ids=g.member_ids | members)
        elif kind is K.REMOVE_MEMBERS:
            assert portal_id is not None
            members = {self.user_of(m) for m in action.member_ids} - {None}
            members |= set(action.portal_member_ids)
            g = self.groups[portal_id]
            self.groups[portal_id] = replace(g, member_ids=g.member_ids - members)

    @staticmethod
    def set_user(user: PortalUser, changes: dict[str, Any]) -> PortalUser:
        names = {
            "userName": "user_name",
            "email": "email",
            "givenName": "given_name",
            "familyName": "family_name",
            "displayName": "display_name",
            "active": "active",
            "grade": "grade",
            "externalId": "external_id",
        }
        values: dict[str, Any] = {names[k]: v for k, v in changes.items() if k in names}
        if "role" in changes:
            values["role"] = Role(changes["role"])
        if "schools" in changes:
            values["school_ids"] = tuple(changes["schools"])
        if "schoolNames" in changes:
            values["school_names"] = tuple(changes["schoolNames"])
        return replace(user, **values)


# --- strategies -------------------------------------------------------------------------------


@st.composite
def ms_users(draw: st.DrawFn, ids: list[str]) -> dict[str, MsUser]:
    users = {}
    for uid in ids:
        upn = draw(st.sampled_from(EMAILS))
        users[uid] = MsUser(
            id=uid,
            user_principal_name=upn,
            mail=draw(st.sampled_from([None, upn, *EMAILS])),
            given_name=draw(st.sampled_from(NAMES)),
            family_name=draw(st.sampled_from(NAMES)),
            display_name=draw(st.sampled_from(["A", "B"])),
            account_enabled=draw(st.booleans()),
            role=draw(st.sampled_from(list(Role))),
            school_ids=tuple(sorted(draw(st.sets(st.sampled_from(SCHOOLS))))),
            grade=draw(st.sampled_from([None, "", "7", "8"])),
            school_names=tuple(sorted(draw(st.sets(st.sampled_from(["Ekskolan", "Åskolan"]))))),
        )
    return users


@st.composite
def microsoft_states(draw: st.DrawFn) -> MicrosoftState:
    in_scope = draw(st.sets(st.sampled_from(USER_IDS)))
    rest = [u for u in USER_IDS if u not in in_scope]
    soft_deleted = draw(st.sets(st.sampled_from(rest))) if rest else set()
    out_of_scope = {u for u in rest if u not in soft_deleted and draw(st.booleans())}
    class_ids = draw(st.sets(st.sampled_from(CLASS_IDS)))
    classes = {
        cid: MsClass(
            id=cid,
            display_name=draw(st.sampled_from(["7A", "7B"])),
            school_id=draw(st.sampled_from([None, *SCHOOLS])),
            school_name=draw(st.sampled_from([None, "Ekskolan", "Åskolan"])),
            member_ids=frozenset(draw(st.sets(st.sampled_from(USER_IDS + GONE_IDS)))),
        )
        for cid in sorted(class_ids)
    }
    out_of_scope_classes = {c for c in CLASS_IDS if c not in class_ids and draw(st.booleans())}
    scope_users = draw(st.none() | st.sets(st.sampled_from(USER_IDS + GONE_IDS)))
    scope_classes = draw(st.none() | st.sets(st.sampled_from([*CLASS_IDS, "cgone"])))
    return MicrosoftState(
        users=draw(ms_users(sorted(in_scope))),
        classes=classes,
        out_of_scope_user_ids=frozenset(out_of_scope),
        soft_deleted_user_ids=frozenset(soft_deleted),
        out_of_scope_class_ids=frozenset(out_of_scope_classes),
        scope_user_ids=None if scope_users is None else frozenset(scope_users),
        scope_class_ids=None if scope_classes is None else frozenset(scope_classes),
    )


@st.composite
def portal_states(draw: st.DrawFn) -> PortalState:
    # externalIds are unique in a portal the sync keeps (it links one account per object)
    linked = draw(st.lists(st.sampled_from(USER_IDS + GONE_IDS), unique=True))
    n_unmanaged = draw(st.integers(0, 4))
    users = []
    for n, external_id in enumerate([*linked, *([None] * n_unmanaged)]):
        email = draw(st.sampled_from(EMAILS))
        users.append(
            PortalUser(
                id=f"p{n}",
                user_name=draw(st.sampled_from([email, *EMAILS])),
                external_id=external_id,
                email=draw(st.sampled_from([None, email])),
                given_name=draw(st.sampled_from(NAMES)),
                family_name=draw(st.sampled_from(NAMES)),
                display_name=draw(st.sampled_from([None, "A", "B"])),
                active=draw(st.booleans()),
                role=draw(st.sampled_from([None, *Role])),
                school_ids=tuple(sorted(draw(st.sets(st.sampled_from(SCHOOLS))))),
                grade=draw(st.sampled_from([None, "7"])),
            )
        )
    user_ids = [u.id for u in users] + ["p-elsewhere"]
    group_links = draw(st.lists(st.sampled_from([*CLASS_IDS, "cgone"]), unique=True))
    n_manual = draw(st.integers(0, 2))
    groups = [
        PortalGroup(
            id=f"g{n}",
            display_name=draw(st.sampled_from(["7A", "7x", "Läsgrupp"])),
            external_id=external_id,
            member_ids=frozenset(draw(st.sets(st.sampled_from(user_ids)))),
            school_id=draw(st.sampled_from([None, *SCHOOLS])),
        )
        for n, external_id in enumerate([*group_links, *([None] * n_manual)])
    ]
    return PortalState(tuple(users), tuple(groups))


EMPTY_PORTAL = PortalState(users=(), groups=())
SETTINGS = settings(max_examples=80, deadline=None)


# --- properties -------------------------------------------------------------------------------


@pytest.mark.slow
@SETTINGS
@given(microsoft_states())
def test_applying_a_plan_to_an_empty_portal_leaves_nothing_to_do(microsoft: MicrosoftState) -> None:
    portal = SimPortal.of(EMPTY_PORTAL)
    portal.apply(make_plan(microsoft, EMPTY_PORTAL))
    assert make_plan(microsoft, portal.state()).actions == ()


@pytest.mark.slow
@SETTINGS
@given(microsoft_states(), portal_states())
def test_applying_a_plan_to_any_portal_leaves_nothing_to_do(
    microsoft: MicrosoftState, state: PortalState
) -> None:
    portal = SimPortal.of(state)
    portal.apply(make_plan(microsoft, state))
    assert make_plan(microsoft, portal.state()).actions == ()


@pytest.mark.slow
@SETTINGS
@given(microsoft_states(), portal_states())
def test_unmanaged_users_are_touched_only_by_adoption_and_manual_groups_never(
    microsoft: MicrosoftState, state: PortalState
) -> None:
    plan = make_plan(microsoft, state)
    unmanaged_users = {u.id for u in state.users if not u.managed}
    manual_groups = {g.id for g in state.groups if not g.managed}
    adopted: set[str] = set()
    for action in plan.actions:
        if action.kind in USER_KINDS and action.portal_id in unmanaged_users:
            if action.kind is K.ADOPT_USER:
                adopted.add(action.portal_id)
            else:  # only what completes the adoption, after it
                assert action.portal_id in adopted, action
        if action.kind not in USER_KINDS:
            assert action.portal_id not in manual_groups, action

    portal = SimPortal.of(state)
    portal.apply(plan)
    deleted = {u.id for u in state.users} - set(portal.users)
    for before in state.users:
        if before.id in unmanaged_users and before.id not in adopted:
            assert portal.users[before.id] == before
    for before in state.groups:
        if before.id in manual_groups:
            after = portal.groups[before.id]
            assert after.member_ids == before.member_ids - deleted
            assert replace(after, member_ids=before.member_ids) == before


@pytest.mark.slow
@SETTINGS
@given(microsoft_states(), portal_states())
def test_never_removes_a_managed_object_outside_the_speaking_scope(
    microsoft: MicrosoftState, state: PortalState
) -> None:
    plan = make_plan(microsoft, state)
    for action in plan.removals:
        if action.kind is K.DELETE_GROUP:
            scope = microsoft.scope_class_ids
            assert scope is None or action.object_id in scope
        else:
            scope = microsoft.scope_user_ids
            assert scope is None or action.object_id in scope | set(microsoft.users)
    for action in plan.of_kind(K.UPDATE_GROUP, K.ADD_MEMBERS, K.REMOVE_MEMBERS):
        assert action.object_id in microsoft.classes


@pytest.mark.slow
@SETTINGS
@given(microsoft_states(), portal_states())
def test_adoption_keeps_the_portal_id(microsoft: MicrosoftState, state: PortalState) -> None:
    plan = make_plan(microsoft, state)
    portal = SimPortal.of(state)
    portal.apply(plan)
    created = {a.object_id for a in plan.of_kind(K.CREATE_USER)}
    for action in plan.of_kind(K.ADOPT_USER):
        assert action.portal_id in {u.id for u in state.users}
        assert action.object_id not in created
        if action.portal_id in portal.users:  # not deleted later in the same plan
            assert portal.users[action.portal_id].external_id == action.object_id


@pytest.mark.slow
@SETTINGS
@given(microsoft_states(), portal_states())
def test_every_action_has_a_reason_and_its_own_key(
    microsoft: MicrosoftState, state: PortalState
) -> None:
    plan = make_plan(microsoft, state)
    assert all(a.reason for a in plan.actions)
    assert len({a.key for a in plan.actions}) == len(plan.actions)
    assert {a.kind for a in plan.removals} <= REMOVAL_KINDS


@st.composite
def portal_states_with_copies(draw: st.DrawFn) -> PortalState:
    """A portal where some objects have copies carrying the same ``externalId`` (lost answers,
    concurrent runs, another client), made at various times."""
    state = draw(portal_states())
    times = st.sampled_from([None, "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"])
    users = [replace(u, created=draw(times)) for u in state.users]
    for n, user in enumerate(draw(st.lists(st.sampled_from(users or [None]), max_size=3))):
        if user is not None and user.managed:
            users.append(replace(user, id=f"pc{n}", user_name=f"copy{n}@s.se", created=draw(times)))
    groups = [replace(g, created=draw(times)) for g in state.groups]
    for n, group in enumerate(draw(st.lists(st.sampled_from(groups or [None]), max_size=2))):
        if group is not None and group.managed:
            groups.append(replace(group, id=f"gc{n}", created=draw(times)))
    return PortalState(tuple(users), tuple(groups))


@pytest.mark.slow
@SETTINGS
@given(microsoft_states(), portal_states_with_copies())
def test_duplicates_converge_to_their_held_deletions_and_then_to_nothing(
    microsoft: MicrosoftState, state: PortalState
) -> None:
    plan = make_plan(microsoft, state)
    held = [a for a in plan.actions if a.kind in ALWAYS_HELD_KINDS]
    portal = SimPortal.of(state)
    portal.apply(replace(plan, actions=tuple(a for a in plan.actions if a not in held)))
    # until a person approves, all that is left is removing the copies (held; or through the
    # ordinary removal rules where the copy kept was itself removed, its person being gone)
    left = make_plan(microsoft, portal.state()).actions
    assert all(a.kind in REMOVAL_KINDS for a in left)
    assert {a.portal_id for a in left} == {a.portal_id for a in held} & set(portal.users) | (
        {a.portal_id for a in held} & set(portal.groups)
    )
    approved = make_plan(microsoft, portal.state())
    portal.apply(approved)
    assert make_plan(microsoft, portal.state()).actions == ()
    assert all(len(d.duplicate_ids) >= 1 for d in plan.duplicates)
