"""Which Microsoft 365 objects are SDS students, teachers and classes, and which are in scope.

Classic SDS marks users and groups with its directory extension attributes (``common.graph.sds``);
new SDS shows roles as ``primaryRole`` on education users and classes as education classes.
Both are recognised. Staff, guests and groups SDS did not create are never students, teachers
or classes. Pure functions: no I/O, no failures (unknown values simply do not classify).

This module is where every scope rule of DESIGN §3 is stated, once, for both paths (the full
read of a tenant and the real-time read of one user or class), including odd data:

- a guest is ``userType`` ``Guest`` *or* an external identity (``#EXT#`` in the user principal
  name, as B2B invitations make it); never a student or teacher, never a class member;
- a student or teacher with no school is in scope only when the tenant's scope names no school;
- a person in several schools is one person with every school, in scope when one is;
- names are compared and written in Unicode NFC, so a name that reaches us decomposed (NFD)
  matches the same name composed; other characters and lengths pass unchanged;
- a class's members are the students and teachers in scope among its members and owners
  (``class_members``); a class without a teacher is a class with students only.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase

from common.graph import sds
from common.graph.schemas import EducationClass, EducationUser, GraphGroup, GraphUser
from common.model import MsClass, MsUser, Role, Scope

GUEST_USER_TYPE = "guest"
#: the marker Entra puts in the user principal name of an invited external identity
EXTERNAL_UPN_MARKER = "#ext#"

_ROLES_BY_OBJECT_TYPE = {
    sds.OBJECT_TYPE_STUDENT.casefold(): Role.STUDENT,
    sds.OBJECT_TYPE_TEACHER.casefold(): Role.TEACHER,
}
_ROLES_BY_PRIMARY_ROLE = {
    sds.PRIMARY_ROLE_STUDENT.casefold(): Role.STUDENT,
    sds.PRIMARY_ROLE_TEACHER.casefold(): Role.TEACHER,
}


def is_guest(user_type: str | None, user_principal_name: str | None = None) -> bool:
    """A guest or an invited external identity (whatever its ``userType`` says)."""
    return (user_type or "").casefold() == GUEST_USER_TYPE or EXTERNAL_UPN_MARKER in (
        user_principal_name or ""
    ).casefold()


def nfc(value: str | None) -> str | None:
    """A name in Unicode normal form C (composed), as the portal gets it and compares it."""
    return unicodedata.normalize("NFC", value) if value else value


def sds_role(
    object_type: str | None,
    primary_role: str | None,
    user_type: str | None = None,
    user_principal_name: str | None = None,
) -> Role | None:
    """Student or teacher from the classic object type (first) or the education primary role;
    ``None`` for anyone else, and always for guests."""
    if is_guest(user_type, user_principal_name):
        return None
    role = _ROLES_BY_OBJECT_TYPE.get((object_type or "").casefold())
    if role is not None:
        return role
    return _ROLES_BY_PRIMARY_ROLE.get((primary_role or "").casefold())


def user_role(user: GraphUser | None, education: EducationUser | None) -> Role | None:
    """Student or teacher as SDS marked the user (classic attribute first), else ``None``."""
    return sds_role(
        user.sds_object_type if user is not None else None,
        education.primary_role if education is not None else None,
        user.user_type if user is not None else None,
        user.user_principal_name if user is not None else None,
    )


def school_name(school_id: str, names: Mapping[str, str | None]) -> str:
    """What a school is called: its SDS display name (NFC), else its id."""
    return nfc(names.get(school_id)) or school_id


def make_user(
    user: GraphUser,
    education: EducationUser | None,
    school_ids: Iterable[str] = (),
    school_names: Mapping[str, str | None] | None = None,
) -> MsUser | None:
    """The sync's view of a directory user, or ``None`` when it is no student or teacher.

    ``school_ids`` are the external ids of the education schools the user belongs to (new
    SDS); the classic school attribute is added to them. ``school_names`` maps school ids to
    their display names (a school without one is called by its id).
    """
    role = user_role(user, education)
    if role is None:
        return None
    schools = {s for s in school_ids if s}
    if user.sds_school_id:
        schools.add(user.sds_school_id)
    grade = user.sds_grade or (education.grade if education is not None else None)
    return MsUser(
        id=user.id,
        user_principal_name=user.user_principal_name,
        mail=user.mail or None,
        given_name=nfc(user.given_name) or None,
        family_name=nfc(user.surname) or None,
        display_name=nfc(user.display_name) or user.user_principal_name,
        account_enabled=user.account_enabled,
        role=role,
        school_ids=tuple(sorted(schools)),
        grade=grade or None,
        school_names=tuple(sorted({school_name(s, school_names or {}) for s in schools})),
    )


def is_sds_class(group: GraphGroup | None, education: EducationClass | None) -> bool:
    """A group SDS created: classic ``Section`` attribute, or an education class."""
    if education is not None:
        return True
    return (
        group is not None
        and (group.sds_object_type or "").casefold() == sds.OBJECT_TYPE_SECTION.casefold()
    )


def make_class(
    group: GraphGroup | None,
    education: EducationClass | None,
    school_ids: Iterable[str] = (),
    member_ids: Iterable[str] = (),
    *,
    school_names: Mapping[str, str | None] | None = None,
) -> MsClass | None:
    """The sync's view of an SDS class, or ``None`` when the group is no SDS class.

    ``school_ids`` are the external ids of the education schools the class belongs to; the
    classic school attribute wins, else the first of them in sorted order. ``school_names``
    names that school, as for users.
    """
    if not is_sds_class(group, education):
        return None
    ref = group or education
    assert ref is not None
    display_name = (group.display_name if group else None) or (
        education.display_name if education else None
    )
    nickname = (group.mail_nickname if group else None) or (
        education.mail_nickname if education else None
    )
    schools = sorted(s for s in school_ids if s)
    school_id = (group.sds_school_id if group else None) or (schools[0] if schools else None)
    return MsClass(
        id=ref.id,
        display_name=nfc(display_name) or ref.id,
        school_id=school_id,
        member_ids=frozenset(member_ids),
        mail_nickname=nickname or None,
        school_name=school_name(school_id, school_names or {}) if school_id else None,
    )


# --- scope --------------------------------------------------------------------------------------


def _folded(values: Iterable[str | None]) -> set[str]:
    return {v.casefold() for v in values if v}


def _named(names: frozenset[str], keys: Iterable[str | None]) -> bool:
    return bool(names) and not _folded(names).isdisjoint(_folded(keys))


def school_in_scope(school_ids: Iterable[str | None], scope: Scope) -> bool:
    """Every school is in scope when the scope names none; else one of them must be named."""
    if not scope.school_ids:
        return True
    return not _folded(scope.school_ids).isdisjoint(_folded(school_ids))


def user_in_scope(user: MsUser, scope: Scope) -> bool:
    """A student or teacher of an in-scope school, or included; never when excluded.

    Include and exclude lists match the object id, display name, user principal name or mail,
    case-insensitively.
    """
    keys = (user.id, user.display_name, user.user_principal_name, user.mail)
    if _named(scope.exclude, keys):
        return False
    if _named(scope.include, keys):
        return True
    return school_in_scope(user.school_ids, scope)


def school_decides(user: MsUser, scope: Scope) -> bool:
    """Whether more schools of ``user`` could change ``user_in_scope`` (the scope names schools
    and the user is neither excluded nor included by name)."""
    keys = (user.id, user.display_name, user.user_principal_name, user.mail)
    return (
        bool(scope.school_ids)
        and not _named(scope.exclude, keys)
        and not _named(scope.include, keys)
    )


def class_in_scope(cls: MsClass, scope: Scope) -> bool:
    """An SDS class of an in-scope school whose name matches the pattern, or included; never
    when excluded. Include and exclude lists match the id, display name or mail nickname."""
    keys = (cls.id, cls.display_name, cls.mail_nickname)
    if _named(scope.exclude, keys):
        return False
    if _named(scope.include, keys):
        return True
    if not school_in_scope((cls.school_id,), scope):
        return False
    return not scope.class_pattern or fnmatchcase(
        cls.display_name.casefold(), scope.class_pattern.casefold()
    )


def class_members(
    candidates: Iterable[str], users_in_scope: Mapping[str, MsUser]
) -> frozenset[str]:
    """The members a class has in the portal: its members and owners that are students or
    teachers in scope (disabled ones included: activity is the account's, not the class's)."""
    return frozenset(m for m in candidates if m in users_in_scope)
