"""What School Data Sync writes into a tenant, shared by the CSV loaders and the generator.

A school becomes an education school. A student or teacher becomes a member user with
``primaryRole`` in the education API and, for schools synced by classic SDS, the classic
extension attributes (``ObjectType``, ``SyncSource_SchoolId``, ``SyncSource_StudentId``...).
Users of new-SDS schools carry only ``SyncSource_SchoolId`` and (students) ``Grade`` as
extension attributes, so every SDS user can be placed in its school the same way. A class
(section) becomes a Microsoft 365 group with hidden membership, the education class with the
same id; teachers are its owners and members, students its members. Loading the same SIS id
again updates the object instead of adding another, as SDS does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from common.graph import sds
from sandbox.graph.store import DirObject, School, Tenant

EXTERNAL_SOURCE_DETAIL = "School Data Sync"
STUDENT = "student"
TEACHER = "teacher"


def add_school(tenant: Tenant, sis_id: str, name: str, **extra: Any) -> School:
    props = {
        "displayName": name,
        "description": extra.pop("description", None),
        "externalId": sis_id,
        "externalSource": "sis",
        "externalSourceDetail": EXTERNAL_SOURCE_DETAIL,
        "createdBy": None,
        **extra,
    }
    return tenant.add_school(sis_id, props)


def _upn(tenant: Tenant, username: str) -> str:
    if "@" in username:
        tenant.add_domain(username.rpartition("@")[2])
        return username
    return f"{username}@{tenant.domain}"


def _upsert(
    tenant: Tenant,
    props: dict[str, Any],
    edu: dict[str, Any],
    *,
    anchor: str,
    existing_id: str | None,
    add: Callable[..., DirObject],
) -> DirObject:
    """Update the object synced before (SDS re-syncs in place), else add one under ``anchor``."""
    existing = tenant.objects.get(existing_id) if existing_id else None
    if existing is not None:
        tenant.update(existing, props)
        existing.edu = edu
        return existing
    obj = add(props, edu=edu)
    tenant.sis_index[anchor] = obj.id
    return obj


def add_person(
    tenant: Tenant,
    *,
    role: str,
    sis_id: str,
    schools: list[School],
    username: str,
    given: str | None = None,
    family: str | None = None,
    mail: str | None = None,
    grade: str | None = None,
    number: str | None = None,
    middle: str | None = None,
    birth_date: str | None = None,
    classic: bool = True,
    extra_extensions: dict[str, str] | None = None,
) -> DirObject:
    """Create (or update) an SDS student or teacher; ``birth_date`` is ``YYYY-MM-DD``."""
    upn = _upn(tenant, username)
    local = upn.rpartition("@")[0]
    display = " ".join(p for p in (given, family) if p) or local
    props: dict[str, Any] = {
        "displayName": display,
        "userPrincipalName": upn,
        "mail": mail or upn,
        "mailNickname": local,
        "accountEnabled": True,
        "userType": "Member",
    }
    if given:
        props["givenName"] = given
    if family:
        props["surname"] = family
    school_sis = schools[0].sis_id if schools else None
    if school_sis:
        props[sds.SCHOOL_ID] = school_sis
    if role == STUDENT and grade:
        props[sds.GRADE] = grade
    anchor = f"{'Student' if role == STUDENT else 'Teacher'}_{sis_id}"
    if classic:
        props[sds.OBJECT_TYPE] = (
            sds.OBJECT_TYPE_STUDENT if role == STUDENT else sds.OBJECT_TYPE_TEACHER
        )
        props[sds.ANCHOR_ID] = anchor
        if role == STUDENT:
            props[sds.STUDENT_ID] = sis_id
            if number:
                props[sds.STUDENT_NUMBER] = number
        else:
            props[sds.TEACHER_ID] = sis_id
            if number:
                props[sds.TEACHER_NUMBER] = number
        props.update(extra_extensions or {})
    edu: dict[str, Any] = {
        "primaryRole": role,
        "externalSource": "sis",
        "externalSourceDetail": EXTERNAL_SOURCE_DETAIL,
        "middleName": middle,
        "student": {
            "birthDate": birth_date,
            "externalId": sis_id,
            "gender": None,
            "grade": grade,
            "graduationYear": None,
            "studentNumber": number,
        }
        if role == STUDENT
        else None,
        "teacher": {"externalId": sis_id, "teacherNumber": number} if role == TEACHER else None,
        "schools": [s.id for s in schools],
    }
    existing_id = tenant.sis_index.get(anchor) or tenant.upns.get(upn.lower())
    return _upsert(tenant, props, edu, anchor=anchor, existing_id=existing_id, add=tenant.add_user)


def add_class(
    tenant: Tenant,
    *,
    sis_id: str,
    school: School | None,
    name: str,
    number: str | None = None,
    term: dict[str, Any] | None = None,
    course: dict[str, Any] | None = None,
    grade: str | None = None,
    classic: bool = True,
    extra_extensions: dict[str, str] | None = None,
) -> DirObject:
    """Create (or update) an SDS class: a Microsoft 365 group and its education class."""
    anchor = f"Section_{sis_id}"
    address = f"{anchor}@{tenant.domain}"
    props: dict[str, Any] = {
        "displayName": name,
        "description": name,
        "mailNickname": anchor,
        "mail": address,
        "proxyAddresses": [f"SMTP:{address}"],
        "groupTypes": ["Unified"],
        "mailEnabled": True,
        "securityEnabled": False,
        "visibility": "HiddenMembership",
        "creationOptions": ["classAssignments", "ExchangeProvisioningFlags:461"],
        "resourceBehaviorOptions": ["HideGroupInOutlook", "WelcomeEmailDisabled"],
    }
    if classic:
        props[sds.OBJECT_TYPE] = sds.OBJECT_TYPE_SECTION
        props[sds.SECTION_ID] = sis_id
        props[sds.SECTION_NAME] = name
        props[sds.ANCHOR_ID] = anchor
        if school is not None:
            props[sds.SCHOOL_ID] = school.sis_id
        if course and course.get("courseNumber"):
            props[sds.COURSE_NUMBER] = course["courseNumber"]
        if term and term.get("displayName"):
            props[sds.TERM_NAME] = term["displayName"]
        props.update(extra_extensions or {})
    edu: dict[str, Any] = {
        "classCode": number,
        "course": course,
        "createdBy": None,
        "externalId": sis_id,
        "externalName": name,
        "externalSource": "sis",
        "externalSourceDetail": EXTERNAL_SOURCE_DETAIL,
        "grade": grade,
        "term": term,
        "schools": [school.id] if school is not None else [],
    }
    existing_id = tenant.sis_index.get(anchor)
    return _upsert(tenant, props, edu, anchor=anchor, existing_id=existing_id, add=tenant.add_group)


def enroll(tenant: Tenant, group: DirObject, person: DirObject, *, teacher: bool) -> None:
    """Add a student (member) or a teacher (owner and member) to a class, once."""
    assert group.members is not None and group.owners is not None
    if teacher and person.id not in group.owners:
        tenant.add_owner(group, person)
    if person.id not in group.members:
        tenant.add_member(group, person)
