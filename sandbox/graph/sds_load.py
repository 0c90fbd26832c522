"""Load School Data Sync CSV folders into a tenant, as SDS would sync them.

``sds-classic`` (SDS v1): ``School.csv``, ``Section.csv``, ``Student.csv``, ``Teacher.csv``,
``StudentEnrollment.csv``, ``TeacherRoster.csv``; only the SIS ID columns (and Username for
people, Section Name for sections) are required, as in Microsoft's minimum-attribute sample.

``sds-v2.1``: ``orgs.csv``, ``users.csv``, ``roles.csv``, ``classes.csv``, ``enrollments.csv``
(``courses.csv`` and ``academicSessions.csv`` when present). Orgs of type school, college or
department become schools (districts and ministries do not); users with a ``student`` role
become students, with a ``teacher`` or ``professor`` role teachers; users with no role
(guardians, relatives) are not created, as SDS keeps them as contacts. Enrollments of teachers
and professors make owners and members, of students members. v2.1 objects are new SDS: they get
the education API, not the classic extension attributes (see ``sds_objects``).

Passwords in the CSVs are never read into the tenant.

Failure policy: a missing file or column raises ``ValueError`` naming it; an enrollment that
names an unknown class or person is skipped, as SDS reports and skips it.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from sandbox.graph.sds_objects import STUDENT, TEACHER, add_class, add_person, add_school, enroll
from sandbox.graph.store import DirObject, School, Tenant

SCHOOL_ORG_TYPES = frozenset({"school", "college", "department"})
TEACHER_ROLES = frozenset({"teacher", "professor"})
STUDENT_ROLES = frozenset({"student"})


def _rows(
    folder: Path, name: str, required: tuple[str, ...], *, optional: bool = False
) -> list[dict[str, str]]:
    path = folder / name
    if not path.is_file():
        if optional:
            return []
        raise ValueError(f"{path} is missing")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [column for column in required if column not in (reader.fieldnames or ())]
        if missing:
            raise ValueError(f"{path} has no column {', '.join(missing)}")
        return [{k: (v or "").strip() for k, v in row.items() if k} for row in reader]


def _opt(row: dict[str, str], column: str) -> str | None:
    return row.get(column) or None


def load_classic(tenant: Tenant, folder: Path) -> dict[str, int]:
    schools: dict[str, School] = {}
    for row in _rows(folder, "School.csv", ("SIS ID", "Name")):
        extra: dict[str, Any] = {
            "schoolNumber": _opt(row, "School Number"),
            "principalName": _opt(row, "Principal Name"),
            "principalEmail": _opt(row, "Principal Secondary Email"),
            "externalPrincipalId": _opt(row, "Principal SIS ID"),
            "lowestGrade": _opt(row, "Grade Low"),
            "highestGrade": _opt(row, "Grade High"),
            "phone": _opt(row, "Phone"),
            "address": {
                "city": _opt(row, "City"),
                "countryOrRegion": _opt(row, "Country"),
                "postalCode": _opt(row, "Zip"),
                "state": _opt(row, "State"),
                "street": _opt(row, "Address"),
            },
        }
        schools[row["SIS ID"]] = add_school(tenant, row["SIS ID"], row["Name"], **extra)
    people: dict[str, DirObject] = {}
    for file, role in (("Student.csv", STUDENT), ("Teacher.csv", TEACHER)):
        for row in _rows(folder, file, ("SIS ID", "School SIS ID", "Username")):
            school = schools.get(row["School SIS ID"])
            people[f"{role}:{row['SIS ID']}"] = add_person(
                tenant,
                role=role,
                sis_id=row["SIS ID"],
                schools=[school] if school else [],
                username=row["Username"],
                given=_opt(row, "First Name"),
                family=_opt(row, "Last Name"),
                grade=_opt(row, "Grade") if role == STUDENT else None,
                number=_opt(row, "Student Number" if role == STUDENT else "Teacher Number"),
                middle=_opt(row, "Middle Name"),
                classic=True,
            )
    classes: dict[str, DirObject] = {}
    for row in _rows(folder, "Section.csv", ("SIS ID", "School SIS ID", "Section Name")):
        term = (
            {
                "externalId": _opt(row, "Term SIS ID"),
                "displayName": _opt(row, "Term Name"),
                "startDate": _opt(row, "Term StartDate"),
                "endDate": _opt(row, "Term EndDate"),
            }
            if _opt(row, "Term SIS ID") or _opt(row, "Term Name")
            else None
        )
        course = (
            {
                "externalId": _opt(row, "Course SIS ID"),
                "displayName": _opt(row, "Course Name"),
                "courseNumber": _opt(row, "Course Number"),
                "description": _opt(row, "Course Description"),
                "subject": _opt(row, "Course Subject"),
            }
            if _opt(row, "Course SIS ID") or _opt(row, "Course Name")
            else None
        )
        classes[row["SIS ID"]] = add_class(
            tenant,
            sis_id=row["SIS ID"],
            school=schools.get(row["School SIS ID"]),
            name=row["Section Name"],
            number=_opt(row, "Section Number"),
            term=term,
            course=course,
            classic=True,
        )
    enrolled = skipped = 0
    for file, role in (("StudentEnrollment.csv", STUDENT), ("TeacherRoster.csv", TEACHER)):
        for row in _rows(folder, file, ("Section SIS ID", "SIS ID")):
            group = classes.get(row["Section SIS ID"])
            person = people.get(f"{role}:{row['SIS ID']}")
            if group is None or person is None:
                skipped += 1
                continue
            enroll(tenant, group, person, teacher=role == TEACHER)
            enrolled += 1
    return {
        "schools": len(schools),
        "people": len(people),
        "classes": len(classes),
        "enrollments": enrolled,
        "skipped": skipped,
    }


def _primary(roles: list[dict[str, str]]) -> dict[str, str]:
    for row in roles:
        if row.get("isPrimary", "").upper() == "TRUE":
            return row
    return roles[0]


def load_v21(tenant: Tenant, folder: Path) -> dict[str, int]:
    schools: dict[str, School] = {}
    for row in _rows(folder, "orgs.csv", ("sourcedId", "name", "type")):
        if row["type"] in SCHOOL_ORG_TYPES:
            schools[row["sourcedId"]] = add_school(tenant, row["sourcedId"], row["name"])
    roles: dict[str, list[dict[str, str]]] = {}
    for row in _rows(folder, "roles.csv", ("userSourcedId", "orgSourcedId", "role")):
        roles.setdefault(row["userSourcedId"], []).append(row)
    people: dict[str, DirObject] = {}
    for row in _rows(folder, "users.csv", ("sourcedId", "username")):
        user_roles = roles.get(row["sourcedId"], [])
        kinds = {r["role"] for r in user_roles}
        role = STUDENT if kinds & STUDENT_ROLES else TEACHER if kinds & TEACHER_ROLES else None
        if role is None:
            continue
        primary = _primary(user_roles)
        ordered = [primary, *(r for r in user_roles if r is not primary)]
        person_schools = list(
            {
                r["orgSourcedId"]: schools[r["orgSourcedId"]]
                for r in ordered
                if r["orgSourcedId"] in schools
            }.values()
        )
        people[row["sourcedId"]] = add_person(
            tenant,
            role=role,
            sis_id=row["sourcedId"],
            schools=person_schools,
            username=row["username"],
            given=_opt(row, "givenName"),
            family=_opt(row, "familyName"),
            mail=_opt(row, "email"),
            grade=_opt(primary, "grade") if role == STUDENT else None,
            middle=_opt(row, "middleName"),
            classic=False,
        )
    sessions = {
        r["sourcedId"]: r
        for r in _rows(folder, "academicSessions.csv", ("sourcedId",), optional=True)
    }
    courses = {
        r["sourcedId"]: r for r in _rows(folder, "courses.csv", ("sourcedId",), optional=True)
    }
    classes: dict[str, DirObject] = {}
    for row in _rows(folder, "classes.csv", ("sourcedId", "orgSourcedId", "title")):
        course_row = courses.get(row.get("courseSourcedId", ""))
        session = sessions.get((row.get("sessionSourcedIds") or "").split(",")[0].strip())
        classes[row["sourcedId"]] = add_class(
            tenant,
            sis_id=row["sourcedId"],
            school=schools.get(row["orgSourcedId"]),
            name=row["title"],
            number=_opt(row, "classCode"),
            term={
                "externalId": session["sourcedId"],
                "displayName": _opt(session, "title"),
                "startDate": _opt(session, "startDate"),
                "endDate": _opt(session, "endDate"),
            }
            if session
            else None,
            course={
                "externalId": course_row["sourcedId"],
                "displayName": _opt(course_row, "title"),
                "courseNumber": _opt(course_row, "code"),
                "description": None,
                "subject": _opt(course_row, "subject"),
            }
            if course_row
            else None,
            grade=_opt(course_row, "grade") if course_row else None,
            classic=False,
        )
    enrolled = skipped = 0
    for row in _rows(folder, "enrollments.csv", ("classSourcedId", "userSourcedId", "role")):
        group = classes.get(row["classSourcedId"])
        person = people.get(row["userSourcedId"])
        if group is None or person is None or row["role"] not in STUDENT_ROLES | TEACHER_ROLES:
            skipped += 1
            continue
        enroll(tenant, group, person, teacher=row["role"] in TEACHER_ROLES)
        enrolled += 1
    return {
        "schools": len(schools),
        "people": len(people),
        "classes": len(classes),
        "enrollments": enrolled,
        "skipped": skipped,
    }


def load(tenant: Tenant, fmt: str, folder: Path) -> dict[str, int]:
    """Load one SDS CSV folder of format ``sds-classic`` or ``sds-v2.1``; a summary of it."""
    if fmt == "sds-classic":
        return load_classic(tenant, folder)
    if fmt == "sds-v2.1":
        return load_v21(tenant, folder)
    raise ValueError(f"unknown SDS format {fmt}")
