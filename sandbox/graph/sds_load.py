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
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sandbox.graph.sds_objects import STUDENT, TEACHER, add_class, add_person, add_school, enroll
from sandbox.graph.store import DirObject, School, Tenant

SCHOOL_ORG_TYPES = frozenset({"school", "college", "department"})
TEACHER_ROLES = frozenset({"teacher", "professor"})
STUDENT_ROLES = frozenset({"student"})
TERM_COLUMNS = {
    "externalId": "Term SIS ID",
    "displayName": "Term Name",
    "startDate": "Term StartDate",
    "endDate": "Term EndDate",
}
COURSE_COLUMNS = {
    "externalId": "Course SIS ID",
    "displayName": "Course Name",
    "courseNumber": "Course Number",
    "description": "Course Description",
    "subject": "Course Subject",
}


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


def _section_part(row: dict[str, str], columns: dict[str, str]) -> dict[str, Any] | None:
    """A classic section's term or course; none when the row names neither its id nor its name."""
    part = {key: _opt(row, column) for key, column in columns.items()}
    return part if part["externalId"] or part["displayName"] else None


def _enroll_and_count(
    tenant: Tenant,
    schools: dict[str, School],
    people: dict[str, DirObject],
    classes: dict[str, DirObject],
    enrollments: Iterable[tuple[DirObject | None, DirObject | None, bool | None]],
) -> dict[str, int]:
    """Enroll each (class, person, as teacher) and count what was loaded.

    An enrollment with an unknown class or person, or a role that is neither (``None``), is
    skipped, as SDS reports and skips it.
    """
    enrolled = skipped = 0
    for group, person, teacher in enrollments:
        if group is None or person is None or teacher is None:
            skipped += 1
            continue
        enroll(tenant, group, person, teacher=teacher)
        enrolled += 1
    return {
        "schools": len(schools),
        "people": len(people),
        "classes": len(classes),
        "enrollments": enrolled,
        "skipped": skipped,
    }


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
        classes[row["SIS ID"]] = add_class(
            tenant,
            sis_id=row["SIS ID"],
            school=schools.get(row["School SIS ID"]),
            name=row["Section Name"],
            number=_opt(row, "Section Number"),
            term=_section_part(row, TERM_COLUMNS),
            course=_section_part(row, COURSE_COLUMNS),
            classic=True,
        )
    enrollments = (
        (
            classes.get(row["Section SIS ID"]),
            people.get(f"{role}:{row['SIS ID']}"),
            role == TEACHER,
        )
        for file, role in (("StudentEnrollment.csv", STUDENT), ("TeacherRoster.csv", TEACHER))
        for row in _rows(folder, file, ("Section SIS ID", "SIS ID"))
    )
    return _enroll_and_count(tenant, schools, people, classes, enrollments)


def _primary(roles: list[dict[str, str]]) -> dict[str, str]:
    for row in roles:
        if row.get("isPrimary", "").upper() == "TRUE":
            return row
    return roles[0]


def _as_teacher(role: str) -> bool | None:
    """Whether a v2.1 enrollment role makes an owner; ``None`` for one that is not enrolled."""
    if role in TEACHER_ROLES:
        return True
    return False if role in STUDENT_ROLES else None


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
    enrollments = (
        (
            classes.get(row["classSourcedId"]),
            people.get(row["userSourcedId"]),
            _as_teacher(row["role"]),
        )
        for row in _rows(folder, "enrollments.csv", ("classSourcedId", "userSourcedId", "role"))
    )
    return _enroll_and_count(tenant, schools, people, classes, enrollments)


def load(tenant: Tenant, fmt: str, folder: Path) -> dict[str, int]:
    """Load one SDS CSV folder of format ``sds-classic`` or ``sds-v2.1``; a summary of it."""
    if fmt == "sds-classic":
        return load_classic(tenant, folder)
    if fmt == "sds-v2.1":
        return load_v21(tenant, folder)
    raise ValueError(f"unknown SDS format {fmt}")
