"""Classification of SDS objects and the tenant scope, table by table (pure functions)."""

from __future__ import annotations

import unicodedata

import pytest

from common.graph import sds
from common.graph.classify import (
    class_in_scope,
    class_members,
    is_guest,
    is_sds_class,
    make_class,
    make_user,
    school_in_scope,
    user_in_scope,
    user_role,
)
from common.graph.schemas import EducationClass, EducationUser, GraphGroup, GraphUser
from common.model import MsClass, MsUser, Role, Scope


def graph_user(
    *,
    object_type: str | None = None,
    school: str | None = None,
    user_type: str | None = "Member",
    grade: str | None = None,
) -> GraphUser:
    return GraphUser(
        id="u1",
        user_principal_name="ora.klein@skola.example",
        display_name="Ora Klein",
        mail="Ora.Klein@skola.example",
        given_name="Ora",
        surname="Klein",
        user_type=user_type,
        sds_object_type=object_type,
        sds_school_id=school,
        sds_grade=grade,
    )


def edu(role: str | None, grade: str | None = None) -> EducationUser:
    return EducationUser(id="u1", primary_role=role, grade=grade)


@pytest.mark.parametrize(
    ("user", "education", "expected"),
    [
        (graph_user(object_type="Student"), None, Role.STUDENT),
        (graph_user(object_type="Teacher"), None, Role.TEACHER),
        (graph_user(object_type="student"), None, Role.STUDENT),  # case does not matter
        (graph_user(), edu("student"), Role.STUDENT),
        (graph_user(), edu("teacher"), Role.TEACHER),
        (graph_user(object_type="Teacher"), edu("student"), Role.TEACHER),  # classic first
        (graph_user(), edu("none"), None),  # staff: no SDS role
        (graph_user(), edu("faculty"), None),
        (graph_user(object_type="School"), None, None),
        (graph_user(), None, None),
        (graph_user(object_type="Student", user_type="Guest"), None, None),
        (graph_user(user_type="Guest"), edu("student"), None),
        (None, edu("teacher"), Role.TEACHER),
    ],
)
def test_user_role_comes_from_classic_attribute_or_primary_role(
    user: GraphUser | None, education: EducationUser | None, expected: Role | None
) -> None:
    assert user_role(user, education) == expected


def test_make_user_merges_schools_of_both_sds_kinds_and_sorts_them() -> None:
    made = make_user(graph_user(object_type="Student", school="10002", grade="9"), None, ["10001"])
    assert made == MsUser(
        id="u1",
        user_principal_name="ora.klein@skola.example",
        mail="Ora.Klein@skola.example",
        given_name="Ora",
        family_name="Klein",
        display_name="Ora Klein",
        account_enabled=True,
        role=Role.STUDENT,
        school_ids=("10001", "10002"),
        grade="9",
        school_names=("10001", "10002"),  # no names given: each school is called by its id
    )


def test_make_user_names_its_schools_sorted_once_each_and_by_id_where_sds_has_no_name() -> None:
    user = graph_user(object_type="Student", school="10003")
    names = {"10001": "Ängskolan", "10002": "Björkskolan", "10004": "Björkskolan"}
    made = make_user(user, None, ["10001", "10002", "10004"], {**names, "10003": None})
    assert made is not None
    assert made.school_ids == ("10001", "10002", "10003", "10004")
    assert made.school_names == ("10003", "Björkskolan", "Ängskolan")
    decomposed = unicodedata.normalize("NFD", "Ängskolan")
    made = make_user(user, None, ["10001"], {"10001": decomposed})
    assert made is not None and made.school_names == ("10003", "Ängskolan")


@pytest.mark.parametrize(
    ("user", "education", "grade"),
    [
        (graph_user(object_type="Student", grade="7"), edu("student", "8"), "7"),
        (graph_user(), edu("student", "8"), "8"),
        (graph_user(), edu("student"), None),
    ],
)
def test_grade_prefers_the_classic_attribute(
    user: GraphUser, education: EducationUser, grade: str | None
) -> None:
    made = make_user(user, education)
    assert made is not None
    assert made.grade == grade


def test_make_user_is_none_for_staff() -> None:
    assert make_user(graph_user(), edu("none"), ["10001"]) is None


SECTION = GraphGroup(
    id="g1",
    display_name="Math - Algebra 1",
    mail_nickname="Section_11001",
    sds_object_type=sds.OBJECT_TYPE_SECTION,
    sds_school_id="10001",
)
ORDINARY = GraphGroup(id="g2", display_name="Lärarrummet", mail_nickname="lararrummet")
EDU_CLASS = EducationClass(id="g3", display_name="Biology 10", mail_nickname="bio10")


@pytest.mark.parametrize(
    ("group", "education", "expected"),
    [
        (SECTION, None, True),
        (ORDINARY, None, False),
        (None, EDU_CLASS, True),
        (GraphGroup(id="g4", display_name="x", sds_object_type="School"), None, False),
        (None, None, False),
    ],
)
def test_only_groups_sds_created_are_classes(
    group: GraphGroup | None, education: EducationClass | None, expected: bool
) -> None:
    assert is_sds_class(group, education) is expected


def test_make_class_takes_the_classic_school_before_education_schools() -> None:
    made = make_class(SECTION, None, ["20001"], ["u1", "u2"])
    assert made == MsClass(
        id="g1",
        display_name="Math - Algebra 1",
        school_id="10001",
        member_ids=frozenset({"u1", "u2"}),
        mail_nickname="Section_11001",
        school_name="10001",
    )


def test_make_class_names_its_school_as_sds_does_else_by_its_id() -> None:
    names = {"10001": "Contoso High School", "20001": "Fabrikam"}
    made = make_class(SECTION, None, ["20001"], school_names=names)
    assert made is not None and (made.school_id, made.school_name) == (
        "10001",
        "Contoso High School",
    )
    made = make_class(None, EDU_CLASS, ["110004", "110003"], school_names={"110004": "X"})
    assert made is not None and (made.school_id, made.school_name) == ("110003", "110003")


def test_make_class_of_new_sds_takes_its_first_school() -> None:
    made = make_class(None, EDU_CLASS, ["110004", "110003"])
    assert made is not None
    assert (made.id, made.display_name, made.school_id) == ("g3", "Biology 10", "110003")


def test_make_class_is_none_for_an_ordinary_group() -> None:
    assert make_class(ORDINARY, None, ["10001"]) is None


# --- scope --------------------------------------------------------------------------------------

STUDENT = MsUser(
    id="u1",
    user_principal_name="ora.klein@skola.example",
    mail="ora@skola.example",
    given_name="Ora",
    family_name="Klein",
    display_name="Ora Klein",
    account_enabled=True,
    role=Role.STUDENT,
    school_ids=("10001",),
)
NO_SCHOOL = MsUser(
    id="u2",
    user_principal_name="x@skola.example",
    mail=None,
    given_name=None,
    family_name=None,
    display_name="X",
    account_enabled=True,
    role=Role.TEACHER,
)


@pytest.mark.parametrize(
    ("user", "scope", "expected"),
    [
        (STUDENT, Scope(), True),
        (NO_SCHOOL, Scope(), True),
        (STUDENT, Scope(school_ids=frozenset({"10001"})), True),
        (STUDENT, Scope(school_ids=frozenset({"10002"})), False),
        (NO_SCHOOL, Scope(school_ids=frozenset({"10001"})), False),
        (STUDENT, Scope(class_pattern="9*"), True),  # the class pattern narrows classes only
        (STUDENT, Scope(school_ids=frozenset({"10002"}), include=frozenset({"u1"})), True),
        (STUDENT, Scope(school_ids=frozenset({"10002"}), include=frozenset({"ora klein"})), True),
        (STUDENT, Scope(include=frozenset({"ORA.KLEIN@skola.example"})), True),
        (STUDENT, Scope(exclude=frozenset({"u1"})), False),
        (STUDENT, Scope(exclude=frozenset({"ora@skola.example"})), False),
        (STUDENT, Scope(include=frozenset({"u1"}), exclude=frozenset({"Ora Klein"})), False),
    ],
)
def test_user_scope_school_include_exclude(user: MsUser, scope: Scope, expected: bool) -> None:
    assert user_in_scope(user, scope) is expected


ALGEBRA = MsClass(
    id="g1",
    display_name="Math - Algebra 1",
    school_id="10001",
    member_ids=frozenset(),
    mail_nickname="Section_11001",
)
ORPHAN = MsClass(id="g5", display_name="Svenska 7A", school_id=None, member_ids=frozenset())


@pytest.mark.parametrize(
    ("cls", "scope", "expected"),
    [
        (ALGEBRA, Scope(), True),
        (ALGEBRA, Scope(school_ids=frozenset({"10001"})), True),
        (ALGEBRA, Scope(school_ids=frozenset({"10002"})), False),
        (ORPHAN, Scope(school_ids=frozenset({"10001"})), False),
        (ORPHAN, Scope(), True),
        (ALGEBRA, Scope(class_pattern="math*"), True),  # case-insensitive
        (ALGEBRA, Scope(class_pattern="*Algebra ?"), True),
        (ALGEBRA, Scope(class_pattern="Svenska*"), False),
        (ALGEBRA, Scope(class_pattern=""), True),
        (ALGEBRA, Scope(school_ids=frozenset({"10001"}), class_pattern="Svenska*"), False),
        (ALGEBRA, Scope(class_pattern="Svenska*", include=frozenset({"g1"})), True),
        (
            ALGEBRA,
            Scope(school_ids=frozenset({"x"}), include=frozenset({"math - algebra 1"})),
            True,
        ),
        (ALGEBRA, Scope(include=frozenset({"section_11001"}), class_pattern="z*"), True),
        (ALGEBRA, Scope(exclude=frozenset({"Math - Algebra 1"})), False),
        (ALGEBRA, Scope(include=frozenset({"g1"}), exclude=frozenset({"g1"})), False),
    ],
)
def test_class_scope_school_pattern_include_exclude(
    cls: MsClass, scope: Scope, expected: bool
) -> None:
    assert class_in_scope(cls, scope) is expected


@pytest.mark.parametrize(
    ("schools", "scope_schools", "expected"),
    [
        ((), frozenset(), True),
        (("A",), frozenset({"a"}), True),  # SIS ids compare case-insensitively
        (("A", "B"), frozenset({"B"}), True),
        ((None,), frozenset({"B"}), False),
    ],
)
def test_school_in_scope(
    schools: tuple[str | None, ...], scope_schools: frozenset[str], expected: bool
) -> None:
    assert school_in_scope(schools, Scope(school_ids=scope_schools)) is expected


# --- odd data from Microsoft 365 (decided in the README) ---------------------------------------


def test_an_external_identity_is_a_guest_whatever_its_user_type() -> None:
    invited = GraphUser(
        id="u9",
        user_principal_name="ora_example.org#EXT#@skola.onmicrosoft.com",
        display_name="Ora",
        user_type="Member",
        sds_object_type="Student",
    )
    assert is_guest(None, "ora_example.org#ext#@skola.onmicrosoft.com")
    assert make_user(invited, edu("student")) is None


def test_a_student_with_no_school_is_in_scope_only_when_the_scope_names_no_school() -> None:
    nowhere = make_user(graph_user(object_type="Student"), None)
    assert nowhere is not None and nowhere.school_ids == ()
    assert user_in_scope(nowhere, Scope())
    assert not user_in_scope(nowhere, Scope(school_ids=frozenset({"S1"})))
    assert user_in_scope(nowhere, Scope(school_ids=frozenset({"S1"}), include=frozenset({"u1"})))


def test_a_person_in_two_schools_is_one_user_with_both_in_scope_through_either() -> None:
    both = make_user(graph_user(object_type="Teacher", school="S2"), None, ["S1"])
    assert both is not None and both.school_ids == ("S1", "S2")
    assert user_in_scope(both, Scope(school_ids=frozenset({"S2"})))
    assert user_in_scope(both, Scope(school_ids=frozenset({"s1"})))  # ids: any letter case
    assert not user_in_scope(both, Scope(school_ids=frozenset({"S3"})))


def test_names_come_out_composed_and_otherwise_unchanged() -> None:
    decomposed = unicodedata.normalize("NFD", "Åsa Öberg-Nguyễn")
    user = GraphUser(
        id="u1",
        user_principal_name="asa@skola.example",
        display_name=decomposed,
        given_name=unicodedata.normalize("NFD", "Åsa"),
        surname=unicodedata.normalize("NFD", "Öberg-Nguyễn"),
        sds_object_type="Student",
    )
    ms = make_user(user, None)
    assert ms is not None
    assert (ms.display_name, ms.given_name, ms.family_name) == (
        "Åsa Öberg-Nguyễn",
        "Åsa",
        "Öberg-Nguyễn",
    )
    group = GraphGroup(
        id="g1",
        display_name=unicodedata.normalize("NFD", "7Ä Ämnesval 日本語 🙂"),
        sds_object_type="Section",
    )
    cls = make_class(group, None)
    assert cls is not None and cls.display_name == "7Ä Ämnesval 日本語 🙂"


def test_a_256_character_display_name_passes_whole() -> None:
    long_name = ("Anna-" + "Å" * 250 + "Berg")[:256]
    user = GraphUser(
        id="u1",
        user_principal_name="a@skola.example",
        display_name=long_name,
        sds_object_type="Student",
    )
    ms = make_user(user, None)
    assert ms is not None and ms.display_name == long_name and len(ms.display_name) == 256


def test_class_members_are_the_students_and_teachers_in_scope_and_may_lack_a_teacher() -> None:
    student = make_user(graph_user(object_type="Student"), None)
    assert student is not None
    in_scope = {student.id: student}
    assert class_members({"u1", "u-guest", "u-staff", "u-teacher-gone"}, in_scope) == {"u1"}
    assert class_members((), in_scope) == frozenset()
