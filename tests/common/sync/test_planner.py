"""The rules of the sync (DESIGN §3), one case per rule: the planner is pure, so these are too."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from common.model import (
    ActionKind,
    MicrosoftState,
    MsClass,
    MsUser,
    Plan,
    PortalGroup,
    PortalState,
    PortalUser,
    Role,
)
from common.sync.planner import ACTION_ORDER, make_plan

K = ActionKind


def ms_user(uid: str, email: str | None = None, **kw: Any) -> MsUser:
    attrs: dict[str, Any] = {
        "id": uid,
        "user_principal_name": email or f"{uid}@skola.se",
        "mail": email or f"{uid}@skola.se",
        "given_name": f"Given{uid}",
        "family_name": f"Family{uid}",
        "display_name": f"Given{uid} Family{uid}",
        "account_enabled": True,
        "role": Role.STUDENT,
        "school_ids": ("s1",),
        "grade": "7",
    }
    attrs.update(kw)
    attrs.setdefault("school_names", tuple(sorted(f"Skolan {s}" for s in attrs["school_ids"])))
    return MsUser(**attrs)


def in_portal(user: MsUser, pid: str, *, managed: bool = True, **kw: Any) -> PortalUser:
    """The portal account that exactly mirrors ``user`` (then changed by ``kw``)."""
    attrs: dict[str, Any] = {
        "id": pid,
        "user_name": user.email,
        "external_id": user.id if managed else None,
        "email": user.email,
        "given_name": user.given_name,
        "family_name": user.family_name,
        "display_name": user.display_name,
        "active": user.account_enabled,
        "role": user.role,
        "school_ids": user.school_ids,
        "grade": user.grade,
        "school_names": user.school_names,
    }
    attrs.update(kw)
    return PortalUser(**attrs)


def unmanaged(pid: str, email: str, **kw: Any) -> PortalUser:
    attrs: dict[str, Any] = {
        "id": pid,
        "user_name": email,
        "external_id": None,
        "email": email,
        "given_name": None,
        "family_name": None,
        "display_name": None,
        "active": True,
    }
    attrs.update(kw)
    return PortalUser(**attrs)


def ms_class(
    cid: str,
    name: str,
    members: set[str],
    school: str | None = "s1",
    school_name: str | None = None,
) -> MsClass:
    return MsClass(
        id=cid,
        display_name=name,
        school_id=school,
        member_ids=frozenset(members),
        school_name=school_name,
    )


def group(
    gid: str, name: str, members: set[str], external_id: str | None, school: str | None = "s1"
) -> PortalGroup:
    return PortalGroup(
        id=gid,
        display_name=name,
        external_id=external_id,
        member_ids=frozenset(members),
        school_id=school,
    )


ANNA = ms_user("u-anna", "Anna.Berg@skola.se", given_name="Anna", family_name="Berg")
BO = ms_user("u-bo", "bo@skola.se", role=Role.TEACHER, school_ids=("s1", "s2"), grade=None)


@dataclass
class Case:
    """Microsoft users/classes and portal objects in; the actions expected out.

    ``expect`` holds (kind, object id, portal id, changes); changes ``None`` means "any".
    """

    users: list[MsUser] = field(default_factory=list)
    portal_users: list[PortalUser] = field(default_factory=list)
    classes: list[MsClass] = field(default_factory=list)
    portal_groups: list[PortalGroup] = field(default_factory=list)
    expect: list[tuple[ActionKind, str, str | None, dict[str, Any] | None]] = field(
        default_factory=list
    )
    out_of_scope: set[str] = field(default_factory=set)
    soft_deleted: set[str] = field(default_factory=set)
    out_of_scope_classes: set[str] = field(default_factory=set)
    scope_user_ids: set[str] | None = None
    scope_class_ids: set[str] | None = None
    reason: str | None = None  # a phrase every action's reason must hold

    def microsoft(self) -> MicrosoftState:
        return MicrosoftState(
            users={u.id: u for u in self.users},
            classes={c.id: c for c in self.classes},
            out_of_scope_user_ids=frozenset(self.out_of_scope),
            soft_deleted_user_ids=frozenset(self.soft_deleted),
            out_of_scope_class_ids=frozenset(self.out_of_scope_classes),
            scope_user_ids=None if self.scope_user_ids is None else frozenset(self.scope_user_ids),
            scope_class_ids=(
                None if self.scope_class_ids is None else frozenset(self.scope_class_ids)
            ),
        )

    def plan(self) -> Plan:
        return make_plan(
            self.microsoft(), PortalState(tuple(self.portal_users), tuple(self.portal_groups))
        )


def everything(user: MsUser) -> dict[str, Any]:
    return {
        "userName": user.email,
        "email": user.email,
        "givenName": user.given_name,
        "familyName": user.family_name,
        "displayName": user.display_name,
        "active": user.account_enabled,
        "role": user.role.value,
        "schools": user.school_ids,
        "schoolNames": user.school_names,
        "grade": user.grade,
        "externalId": user.id,
    }


RULES = {
    "creates_new_student_with_every_attribute": Case(
        users=[ANNA],
        expect=[(K.CREATE_USER, ANNA.id, None, everything(ANNA))],
        reason="new student in Microsoft 365",
    ),
    "creates_new_teacher_with_sorted_schools_and_no_grade": Case(
        users=[ms_user("u-bo", "bo@skola.se", role=Role.TEACHER, school_ids=("s2", "s1"))],
        expect=[(K.CREATE_USER, "u-bo", None, None)],
        reason="new teacher in Microsoft 365",
    ),
    "creates_user_without_mail_under_user_principal_name": Case(
        users=[ms_user("u-c", mail=None, user_principal_name="Cilla@skola.se")],
        expect=[(K.CREATE_USER, "u-c", None, None)],
    ),
    "writes_nothing_when_portal_already_matches": Case(
        users=[ANNA, BO],
        portal_users=[in_portal(ANNA, "p1"), in_portal(BO, "p2")],
    ),
    "updates_only_the_attributes_that_differ": Case(
        users=[ANNA],
        portal_users=[in_portal(ANNA, "p1", display_name="Old Name", grade="6")],
        expect=[(K.UPDATE_USER, ANNA.id, "p1", {"displayName": ANNA.display_name, "grade": "7"})],
        reason="changed in Microsoft 365: display name, grade",
    ),
    "treats_none_and_empty_string_alike": Case(
        users=[ms_user("u-d", given_name=None, grade=None)],
        portal_users=[in_portal(ms_user("u-d", given_name=None, grade=None), "p1", given_name="")],
    ),
    "compares_email_in_exact_letter_case": Case(
        users=[ANNA],
        portal_users=[in_portal(ANNA, "p1", user_name="anna.berg@skola.se")],
        expect=[(K.UPDATE_USER, ANNA.id, "p1", {"userName": ANNA.email})],
    ),
    "follows_a_rename_by_object_id_not_by_email": Case(
        users=[ms_user("u-e", "new@skola.se")],
        portal_users=[in_portal(ms_user("u-e", "old@skola.se"), "p1")],
        expect=[
            (K.UPDATE_USER, "u-e", "p1", {"userName": "new@skola.se", "email": "new@skola.se"})
        ],
    ),
    "adopts_unmanaged_user_with_same_email_in_other_letter_case": Case(
        users=[ANNA],
        portal_users=[unmanaged("p1", "anna.berg@SKOLA.se", given_name="Anna")],
        expect=[
            (
                K.ADOPT_USER,
                ANNA.id,
                "p1",
                {k: v for k, v in everything(ANNA).items() if k not in ("givenName", "active")},
            )
        ],
        reason="e-mail matches existing portal account anna.berg@SKOLA.se (adopted)",
    ),
    "adopts_unmanaged_user_whose_user_name_is_the_email": Case(
        users=[ANNA],
        portal_users=[unmanaged("p1", "someone-else@skola.se", user_name=ANNA.email)],
        expect=[(K.ADOPT_USER, ANNA.id, "p1", None)],
    ),
    "adopts_unmanaged_user_by_user_principal_name_when_mail_differs": Case(
        users=[ms_user("u-f", mail="f.mail@skola.se", user_principal_name="f.upn@skola.se")],
        portal_users=[unmanaged("p1", "F.UPN@skola.se")],
        expect=[(K.ADOPT_USER, "u-f", "p1", None)],
    ),
    "prefers_the_mail_over_the_user_principal_name_when_adopting": Case(
        users=[ms_user("u-f", mail="f.mail@skola.se", user_principal_name="f.upn@skola.se")],
        portal_users=[unmanaged("p1", "f.upn@skola.se"), unmanaged("p2", "f.mail@skola.se")],
        expect=[(K.ADOPT_USER, "u-f", "p2", None)],
    ),
    "reactivates_an_inactive_account_it_adopts_for_an_enabled_user": Case(
        users=[ANNA],
        portal_users=[in_portal(ANNA, "p1", managed=False, active=False)],
        expect=[(K.ADOPT_USER, ANNA.id, "p1", {"externalId": ANNA.id, "active": True})],
    ),
    "adopting_a_disabled_user_deactivates_as_a_separate_removal": Case(
        users=[ms_user("u-g", account_enabled=False)],
        portal_users=[in_portal(ms_user("u-g"), "p1", managed=False)],
        expect=[
            (K.ADOPT_USER, "u-g", "p1", {"externalId": "u-g"}),
            (K.DEACTIVATE_USER, "u-g", "p1", {"active": False}),
        ],
    ),
    "never_matches_by_name": Case(
        users=[ANNA],
        portal_users=[unmanaged("p1", "anna.b@gmail.com", given_name="Anna", family_name="Berg")],
        expect=[(K.CREATE_USER, ANNA.id, None, None)],
    ),
    "does_not_adopt_a_managed_account_whose_microsoft_user_still_exists": Case(
        users=[ANNA],
        portal_users=[in_portal(ms_user("u-old", ANNA.email), "p1")],
        out_of_scope={"u-old"},
        expect=[(K.CREATE_USER, ANNA.id, None, None), (K.DEACTIVATE_USER, "u-old", "p1", None)],
    ),
    "takes_over_the_managed_account_of_a_permanently_deleted_user": Case(
        users=[ANNA],
        portal_users=[in_portal(ms_user("u-old", ANNA.email.lower()), "p1")],
        expect=[(K.ADOPT_USER, ANNA.id, "p1", None)],
        reason="of Microsoft 365 user u-old, which was permanently deleted (adopted",
    ),
    "does_not_take_over_an_account_whose_deletion_it_cannot_see": Case(
        users=[ANNA],
        portal_users=[in_portal(ms_user("u-old", ANNA.email), "p1")],
        scope_user_ids={ANNA.id},
        expect=[(K.CREATE_USER, ANNA.id, None, None)],
    ),
    "deactivates_a_user_disabled_in_microsoft_365": Case(
        users=[ms_user("u-h", account_enabled=False)],
        portal_users=[in_portal(ms_user("u-h"), "p1")],
        expect=[(K.DEACTIVATE_USER, "u-h", "p1", {"active": False})],
        reason="disabled in Microsoft 365",
    ),
    "updates_and_deactivates_a_disabled_user_whose_name_changed": Case(
        users=[ms_user("u-h", account_enabled=False, display_name="New")],
        portal_users=[in_portal(ms_user("u-h"), "p1")],
        expect=[
            (K.UPDATE_USER, "u-h", "p1", {"displayName": "New"}),
            (K.DEACTIVATE_USER, "u-h", "p1", {"active": False}),
        ],
    ),
    "deactivates_a_soft_deleted_user": Case(
        portal_users=[in_portal(ANNA, "p1")],
        soft_deleted={ANNA.id},
        expect=[(K.DEACTIVATE_USER, ANNA.id, "p1", {"active": False})],
        reason="soft-deleted in Microsoft 365 (in the recycle bin)",
    ),
    "deactivates_a_user_out_of_scope": Case(
        portal_users=[in_portal(ANNA, "p1")],
        out_of_scope={ANNA.id},
        expect=[(K.DEACTIVATE_USER, ANNA.id, "p1", {"active": False})],
        reason="out of scope",
    ),
    "leaves_an_already_deactivated_soft_deleted_user_alone": Case(
        portal_users=[in_portal(ANNA, "p1", active=False)],
        soft_deleted={ANNA.id},
    ),
    "reactivates_the_same_portal_account_when_the_user_is_restored": Case(
        users=[ANNA],
        portal_users=[in_portal(ANNA, "p1", active=False, grade="6")],
        expect=[(K.REACTIVATE_USER, ANNA.id, "p1", {"active": True, "grade": "7"})],
        reason="reactivated",
    ),
    "deletes_a_user_permanently_deleted_in_microsoft_365": Case(
        portal_users=[in_portal(ANNA, "p1"), in_portal(BO, "p2", active=False)],
        expect=[(K.DELETE_USER, ANNA.id, "p1", {}), (K.DELETE_USER, BO.id, "p2", {})],
        reason="permanently deleted in Microsoft 365",
    ),
    "leaves_managed_users_outside_the_speaking_scope_alone": Case(
        users=[ANNA],
        portal_users=[in_portal(ANNA, "p1"), in_portal(BO, "p2")],
        scope_user_ids={ANNA.id},
    ),
    "never_touches_unmanaged_users_it_does_not_adopt": Case(
        users=[ANNA],
        portal_users=[in_portal(ANNA, "p1"), unmanaged("p2", "lärare@skola.se", active=False)],
    ),
    "creates_a_class_with_its_members_in_scope": Case(
        users=[ANNA, BO],
        classes=[ms_class("c1", "7A", {ANNA.id, BO.id, "u-staff"}, school_name="Skolan s1")],
        portal_users=[in_portal(ANNA, "p1"), in_portal(BO, "p2")],
        expect=[
            (
                K.CREATE_GROUP,
                "c1",
                None,
                {
                    "displayName": "7A",
                    "school": "s1",
                    "schoolName": "Skolan s1",
                    "externalId": "c1",
                },
            ),
            (K.ADD_MEMBERS, "c1", None, None),
        ],
    ),
    "updates_class_name_and_school_only": Case(
        classes=[ms_class("c1", "7B", set(), school="s2", school_name="Skolan s2")],
        portal_groups=[group("g1", "7A", set(), "c1")],
        expect=[
            (
                K.UPDATE_GROUP,
                "c1",
                "g1",
                {"displayName": "7B", "school": "s2", "schoolName": "Skolan s2"},
            )
        ],
        reason="class changed in School Data Sync: display name, school, school name",
    ),
    "follows_a_school_renamed_in_sds_on_its_people_and_classes": Case(
        users=[replace(ANNA, school_names=("Nya skolan",))],
        classes=[ms_class("c1", "7A", set(), school_name="Nya skolan")],
        portal_users=[in_portal(ANNA, "p1")],
        portal_groups=[group("g1", "7A", set(), "c1")],
        expect=[
            (K.UPDATE_USER, ANNA.id, "p1", {"schoolNames": ("Nya skolan",)}),
            (K.UPDATE_GROUP, "c1", "g1", {"schoolName": "Nya skolan"}),
        ],
    ),
    "adds_and_removes_members_by_difference": Case(
        users=[ANNA, BO],
        classes=[ms_class("c1", "7A", {ANNA.id})],
        portal_users=[in_portal(ANNA, "p1"), in_portal(BO, "p2")],
        portal_groups=[group("g1", "7A", {"p2"}, "c1")],
        expect=[(K.ADD_MEMBERS, "c1", "g1", None), (K.REMOVE_MEMBERS, "c1", "g1", None)],
    ),
    "removes_members_the_sync_does_not_know_by_portal_id": Case(
        users=[ANNA],
        classes=[ms_class("c1", "7A", {ANNA.id})],
        portal_users=[in_portal(ANNA, "p1"), unmanaged("p9", "extra@skola.se")],
        portal_groups=[group("g1", "7A", {"p1", "p9", "p-not-read"}, "c1")],
        expect=[(K.REMOVE_MEMBERS, "c1", "g1", None)],
    ),
    "counts_a_member_adopted_in_the_same_plan_as_present": Case(
        users=[ANNA],
        classes=[ms_class("c1", "7A", {ANNA.id})],
        portal_users=[in_portal(ANNA, "p1", managed=False)],
        portal_groups=[group("g1", "7A", {"p1"}, "c1")],
        expect=[(K.ADOPT_USER, ANNA.id, "p1", {"externalId": ANNA.id})],
    ),
    "never_touches_manual_groups_or_their_members": Case(
        users=[ANNA],
        classes=[ms_class("c1", "7A", {ANNA.id})],
        portal_users=[in_portal(ANNA, "p1"), unmanaged("p9", "x@skola.se")],
        portal_groups=[group("g1", "7A", {"p1"}, "c1"), group("g2", "Läsgrupp", {"p9"}, None)],
    ),
    "deletes_a_class_gone_from_school_data_sync": Case(
        portal_groups=[group("g1", "7A", {"p1"}, "c1")],
        expect=[(K.DELETE_GROUP, "c1", "g1", {})],
        reason="class permanently deleted in Microsoft 365 (its members stay in the portal)",
    ),
    "deletes_a_class_out_of_scope_or_in_the_recycle_bin": Case(
        portal_groups=[group("g1", "7A", set(), "c1")],
        out_of_scope_classes={"c1"},
        expect=[(K.DELETE_GROUP, "c1", "g1", {})],
        reason="class out of scope or in the Microsoft 365 recycle bin",
    ),
    "leaves_managed_classes_outside_the_speaking_scope_alone": Case(
        classes=[ms_class("c1", "7A", set())],
        portal_groups=[group("g1", "7A", set(), "c1"), group("g2", "8A", set(), "c2")],
        scope_class_ids={"c1"},
    ),
}


@pytest.mark.parametrize("case", RULES.values(), ids=RULES.keys())
def test_rule(case: Case) -> None:
    plan = case.plan()
    got = [(a.kind, a.object_id, a.portal_id, dict(a.changes)) for a in plan.actions]
    assert [g[:3] for g in got] == [e[:3] for e in case.expect]
    for (_, _, _, changes), (_, _, _, expected) in zip(got, case.expect, strict=True):
        if expected is not None:
            assert changes == expected
    for action in plan.actions:
        assert action.reason
        if case.reason is not None:
            assert case.reason in action.reason


def test_member_changes_name_entra_ids_and_portal_ids_of_unknown_members() -> None:
    plan = RULES["adds_and_removes_members_by_difference"].plan()
    (add,) = plan.of_kind(K.ADD_MEMBERS)
    (remove,) = plan.of_kind(K.REMOVE_MEMBERS)
    assert add.member_ids == (ANNA.id,)
    assert remove.member_ids == (BO.id,)
    (unknown,) = RULES["removes_members_the_sync_does_not_know_by_portal_id"].plan().actions
    assert unknown.member_ids == ()
    assert unknown.portal_member_ids == ("p9",)


def test_new_class_gets_only_members_that_are_users_in_scope() -> None:
    (add,) = RULES["creates_a_class_with_its_members_in_scope"].plan().of_kind(K.ADD_MEMBERS)
    assert add.member_ids == tuple(sorted([ANNA.id, BO.id]))


def test_takeover_does_not_also_delete_the_account_it_takes_over() -> None:
    plan = RULES["takes_over_the_managed_account_of_a_permanently_deleted_user"].plan()
    assert plan.of_kind(K.DELETE_USER) == ()
    (adopt,) = plan.actions
    assert adopt.changes["externalId"] == ANNA.id
    assert adopt.changes["userName"] == ANNA.email


def test_one_account_is_adopted_by_one_microsoft_user_only() -> None:
    twin = ms_user("u-twin", mail="other@skola.se", user_principal_name=ANNA.email)
    plan = Case(users=[ANNA, twin], portal_users=[unmanaged("p1", ANNA.email)]).plan()
    assert [(a.kind, a.object_id) for a in plan.actions] == [
        (K.CREATE_USER, twin.id),
        (K.ADOPT_USER, ANNA.id),
    ]


def test_reports_unmanaged_lookalike_with_shared_school_as_collision() -> None:
    lookalike = unmanaged(
        "p1", "anna.b@gmail.com", given_name=" anna ", family_name="BERG", school_ids=("s1",)
    )
    plan = Case(users=[ANNA], portal_users=[lookalike]).plan()
    (collision,) = plan.collisions
    assert collision.object_id == ANNA.id
    assert collision.microsoft_email == ANNA.email
    assert collision.portal_id == "p1"
    assert collision.portal_email == "anna.b@gmail.com"
    assert plan.of_kind(K.ADOPT_USER) == ()


def test_reports_lookalike_without_schools_as_collision() -> None:
    lookalike = unmanaged("p1", "anna.b@gmail.com", given_name="Anna", family_name="Berg")
    assert len(Case(users=[ANNA], portal_users=[lookalike]).plan().collisions) == 1


def test_lookalike_at_another_school_is_no_collision() -> None:
    lookalike = unmanaged(
        "p1", "anna.b@gmail.com", given_name="Anna", family_name="Berg", school_ids=("s9",)
    )
    assert Case(users=[ANNA], portal_users=[lookalike]).plan().collisions == ()


def test_managed_lookalike_and_adopted_account_are_no_collisions() -> None:
    anna2 = ms_user("u-anna2", "anna2@skola.se", given_name="Anna", family_name="Berg")
    portal = [
        in_portal(BO, "p1", given_name="Anna", family_name="Berg"),
        unmanaged("p2", anna2.email, given_name="Anna", family_name="Berg"),
    ]
    plan = Case(users=[ANNA, anna2, BO], portal_users=portal).plan()
    assert plan.collisions == ()


def test_classes_in_scope_are_sorted_by_name() -> None:
    classes = [
        ms_class("c1", "9b", set()),
        ms_class("c2", "7A", set()),
        ms_class("c3", "8a", set()),
    ]
    plan = Case(classes=classes).plan()
    assert plan.classes_in_scope == (("c2", "7A"), ("c3", "8a"), ("c1", "9b"))


def test_actions_run_users_then_classes_then_members_then_removals() -> None:
    carl = ms_user("u-carl", "carl@skola.se")
    dora = ms_user("u-dora", "dora@skola.se", account_enabled=False)
    case = Case(
        users=[ANNA, BO, carl, dora, ms_user("u-new")],
        portal_users=[
            in_portal(ANNA, "p1", display_name="x"),
            in_portal(BO, "p2", active=False),
            unmanaged("p3", carl.email),
            in_portal(dora, "p4", active=True),
            in_portal(ms_user("u-gone"), "p5"),
            in_portal(ms_user("u-bin"), "p6"),
        ],
        soft_deleted={"u-bin"},
        classes=[ms_class("c1", "7A", {ANNA.id}), ms_class("c2", "7B", {BO.id})],
        portal_groups=[group("g2", "7x", {"p1"}, "c2"), group("g3", "old", set(), "c3")],
    )
    kinds = [a.kind for a in case.plan().actions]
    assert kinds == [
        K.CREATE_USER,
        K.ADOPT_USER,
        K.UPDATE_USER,
        K.REACTIVATE_USER,
        K.CREATE_GROUP,
        K.UPDATE_GROUP,
        K.ADD_MEMBERS,
        K.ADD_MEMBERS,
        K.REMOVE_MEMBERS,
        K.DELETE_GROUP,
        K.DEACTIVATE_USER,
        K.DEACTIVATE_USER,
        K.DELETE_USER,
    ]
    assert sorted(set(kinds), key=ACTION_ORDER.index) == list(dict.fromkeys(kinds))


def test_single_object_plan_agrees_with_whole_tenant_plan_for_that_object() -> None:
    portal = PortalState(
        users=(in_portal(ANNA, "p1", grade="5"), in_portal(BO, "p2"), unmanaged("p3", "c@s.se")),
        groups=(),
    )
    users = {ANNA.id: ANNA}
    whole = make_plan(MicrosoftState(users=users, classes={}), portal)
    single = make_plan(
        MicrosoftState(users=users, classes={}, scope_user_ids=frozenset({ANNA.id})), portal
    )
    assert single.actions == tuple(a for a in whole.actions if a.object_id == ANNA.id)
    assert {a.kind for a in whole.actions} == {K.UPDATE_USER, K.DELETE_USER}


def test_class_job_keeps_members_with_managed_accounts_it_did_not_read() -> None:
    # a real-time class job reads the class, not each member: members with a managed, active
    # portal account stay; a member that left the class is removed; none is created
    stays, leaves = ms_user("a"), ms_user("b")
    cls = MsClass("c1", "7A", "s1", frozenset({"a"}))
    portal = PortalState(
        users=(in_portal(stays, "p-a"), in_portal(leaves, "p-b")),
        groups=(PortalGroup("g1", "7A", "c1", frozenset({"p-a", "p-b"}), "s1"),),
    )
    microsoft = MicrosoftState(
        users={}, classes={"c1": cls}, scope_user_ids=frozenset(), scope_class_ids=frozenset({"c1"})
    )
    plan = make_plan(microsoft, portal)
    assert [(a.kind, a.member_ids) for a in plan.actions] == [(K.REMOVE_MEMBERS, ("b",))]
