"""SDS v2 and v2.1 CSV folders: validated into the loader's plan (see ``sds_load``).

``sds-v2.1``: ``orgs.csv``, ``users.csv``, ``roles.csv``, ``classes.csv``, ``enrollments.csv``
(``academicSessions.csv`` and ``courses.csv`` when present). ``sds-v2``, the format before it:
``orgs.csv``, ``users.csv`` (with ``orgSourcedIds`` and ``role``), ``classes.csv``,
``enrollments.csv``; no ``roles.csv``. Enumerations (org ``type``, ``role``) match whatever
their letter case, as SDS matches them.

Orgs of type school, college or department become schools (districts, ministries and
universities do not). Users with a ``student`` role become students, with a ``teacher`` or
``professor`` role teachers; users with other roles (guardians, staff, aides) are valid but not
loaded, with a warning, and so are their enrollments. v2 and v2.1 objects are new SDS: they get
the education API, not the classic extension attributes (see ``sds_objects``).

Failure policy: as ``sds_load``; a row naming an org, user or class that is not in its file,
or an org type or ``roles.csv`` role not in Microsoft's "Default List of Values", is rejected;
a session or course that is not in its file is dropped with a warning.
"""

from __future__ import annotations

from typing import Any

from sandbox.graph.sds_csv import CsvFolder, Row
from sandbox.graph.sds_load import Plan, check_enrollments, check_username
from sandbox.graph.sds_objects import STUDENT, TEACHER

FORMATS = ("sds-v2", "sds-v2.1")
SCHOOL_ORG_TYPES = frozenset({"school", "college", "department"})
#: org types of Microsoft's "Default List of Values" for SDS v1/v2.1 (lower case)
ORG_TYPES = frozenset(
    t.lower()
    for t in [
        "school",
        "ministryOfEducation",
        "localAuthority",
        "department",
        "university",
        "region",
        "district",
        "college",
        "division",
        "local",
        "campus",
        "province",
        "state",
        "adultEducation",
        "researchCenter",
        "national",
        "municipality",
        "program",
        "departmentOfEducation",
        "academicTrust",
    ]
)
#: roles.csv roles of the same list (Organization user roles; lower case)
ORG_ROLES = frozenset(
    r.lower()
    for r in [
        "principal",
        "chair",
        "professor",
        "researcher",
        "adjunct",
        "affiliate",
        "occupationalTherapist",
        "physicalTherapist",
        "speechTherapist",
        "visionTherapist",
        "paraprofessional",
        "specialServices",
        "advisor",
        "proctor",
        "nurse",
        "officeStaff",
        "lecturer",
        "itAdmin",
        "administrator",
        "teacher",
        "faculty",
        "staff",
        "teacherAssistant",
        "assistant",
        "instructor",
        "substitute",
        "coach",
        "alumni",
        "student",
        "other",
    ]
)
TEACHER_ROLES = frozenset({"teacher", "professor"})
STUDENT_ROLES = frozenset({"student"})


def _role_of(kinds: set[str]) -> str | None:
    if kinds & STUDENT_ROLES:
        return STUDENT
    return TEACHER if kinds & TEACHER_ROLES else None


def _orgs(files: CsvFolder) -> tuple[Plan, set[str]]:
    """The plan with its schools, and the ids of every accepted org."""
    plan, orgs = Plan(), set()
    for row in files.rows("orgs.csv", ("sourcedId", "name", "type"), key="sourcedId"):
        kind = row["type"].lower()
        if kind not in ORG_TYPES:
            files.reject(row, f"type '{row['type']}' is not an SDS org type")
            continue
        orgs.add(row["sourcedId"])
        if kind in SCHOOL_ORG_TYPES:
            plan.schools.append((row["sourcedId"], row["name"], {}))
    return plan, orgs


def _memberships(
    files: CsvFolder, users: dict[str, Row], orgs: set[str], fmt: str
) -> dict[str, list[tuple[str, str, str | None]]]:
    """user id -> [(org id, role, grade)], primary first (v2.1 ``roles.csv``, or v2 users)."""
    out: dict[str, list[tuple[str, str, str | None]]] = {}
    if fmt == "sds-v2":
        for user in users.values():
            org_ids = [o.strip() for o in user["orgSourcedIds"].split(",") if o.strip()]
            unknown = [o for o in org_ids if o not in orgs]
            if unknown:
                files.reject(user, f"orgSourcedIds '{unknown[0]}' is not in orgs.csv")
                continue
            out[user["sourcedId"]] = [(o, user["role"].lower(), user.opt("grade")) for o in org_ids]
        return out
    for row in files.rows("roles.csv", ("userSourcedId", "orgSourcedId", "role")):
        if row["userSourcedId"] not in users:
            files.reject(row, f"userSourcedId '{row['userSourcedId']}' is not in users.csv")
        elif row["orgSourcedId"] not in orgs:
            files.reject(row, f"orgSourcedId '{row['orgSourcedId']}' is not in orgs.csv")
        elif row["role"].lower() not in ORG_ROLES:
            files.reject(row, f"role '{row['role']}' is not an SDS role")
        else:
            files.date(row, "roleStartDate")
            files.date(row, "roleEndDate")
            entry = (row["orgSourcedId"], row["role"].lower(), row.opt("grade"))
            roles = out.setdefault(row["userSourcedId"], [])
            primary = row["isPrimary"].lower() == "true"
            roles.insert(0, entry) if primary else roles.append(entry)
    return out


def plan(fmt: str, files: CsvFolder) -> Plan:
    """The validated plan of one v2 or v2.1 folder."""
    result, orgs = _orgs(files)
    schools = {sis_id for sis_id, _, _ in result.schools}
    user_columns = ("sourcedId", "username", "givenName", "familyName")
    if fmt == "sds-v2":
        user_columns += ("orgSourcedIds", "role")
    users = {
        row["sourcedId"]: row for row in files.rows("users.csv", user_columns, key="sourcedId")
    }
    memberships = _memberships(files, users, orgs, fmt)
    people: dict[str, str] = {}
    not_loaded: set[str] = set()
    usernames: dict[str, Row] = {}
    for user_id, row in users.items():
        if user_id not in memberships:
            if fmt == "sds-v2.1":  # a contact (guardian, relative): SDS makes no account
                files.warn(row, "no role in roles.csv: a contact, not loaded")
                not_loaded.add(user_id)
            continue
        roles = memberships[user_id]
        role = _role_of({kind for _, kind, _ in roles})
        if role is None:
            files.warn(row, f"role {roles[0][1]} is not a student or teacher role: not loaded")
            not_loaded.add(user_id)
            continue
        if not check_username(files, row, row["username"], usernames, "username"):
            continue
        people[user_id] = role
        person: dict[str, Any] = {
            "role": role,
            "sis_id": user_id,
            "school_ids": list(dict.fromkeys(o for o, _, _ in roles if o in schools)),
            "username": row["username"],
            "given": row.opt("givenName"),
            "family": row.opt("familyName"),
            "mail": files.email(row, "email"),
            "grade": roles[0][2] if role == STUDENT else None,
            "middle": row.opt("middleName"),
            "classic": False,
        }
        result.people.append((user_id, person))
    sessions = {
        r["sourcedId"]: {
            "externalId": r["sourcedId"],
            "displayName": r.opt("title"),
            "startDate": files.date(r, "startDate"),
            "endDate": files.date(r, "endDate"),
        }
        for r in files.rows(
            "academicSessions.csv", ("sourcedId",), key="sourcedId", optional_file=True
        )
    }
    courses = {
        r["sourcedId"]: r
        for r in files.rows("courses.csv", ("sourcedId",), key="sourcedId", optional_file=True)
    }
    classes: set[str] = set()
    for row in files.rows("classes.csv", ("sourcedId", "orgSourcedId", "title"), key="sourcedId"):
        if row["orgSourcedId"] not in schools:
            where = "not in orgs.csv" if row["orgSourcedId"] not in orgs else "not a school"
            files.reject(row, f"orgSourcedId '{row['orgSourcedId']}' is {where}")
            continue
        session_id = row["sessionSourcedIds"].split(",")[0].strip()
        if session_id and session_id not in sessions:
            files.warn(row, f"sessionSourcedIds '{session_id}' is not in academicSessions.csv")
        course_row = courses.get(row["courseSourcedId"])
        if row["courseSourcedId"] and course_row is None:
            files.warn(row, f"courseSourcedId '{row['courseSourcedId']}' is not in courses.csv")
        course = (
            {
                "externalId": course_row["sourcedId"],
                "displayName": course_row.opt("title"),
                "courseNumber": course_row.opt("code"),
                "description": None,
                "subject": course_row.opt("subject"),
            }
            if course_row
            else None
        )
        klass = {
            "sis_id": row["sourcedId"],
            "school_id": row["orgSourcedId"],
            "name": row["title"],
            "number": row.opt("classCode"),
            "term": sessions.get(session_id),
            "course": course,
            "grade": course_row.opt("grade") if course_row else None,
            "classic": False,
        }
        result.classes.append((row["sourcedId"], klass))
        classes.add(row["sourcedId"])
    rows = files.rows("enrollments.csv", ("classSourcedId", "userSourcedId", "role"))
    known = {**people, **{u: "not loaded" for u in not_loaded}}
    result.enrollments = check_enrollments(
        files,
        (
            (r, r["classSourcedId"], r["userSourcedId"], _enrolled_as(files, r, not_loaded))
            for r in rows
        ),
        classes,
        known,
        class_column=lambda r: "classSourcedId",
        person_column=lambda r: "userSourcedId",
    )
    return result


def _enrolled_as(files: CsvFolder, row: Row, not_loaded: set[str]) -> bool | None:
    """Whether an enrollment makes an owner; ``None`` (with a warning) when it loads nothing."""
    role = row["role"].lower()
    if row["userSourcedId"] in not_loaded:
        files.warn(row, f"userSourcedId '{row['userSourcedId']}' is not loaded: skipped")
        return None
    if role in TEACHER_ROLES:
        return True
    if role in STUDENT_ROLES:
        return False
    files.warn(row, f"role {row['role']} is not a student or teacher role: skipped")
    return None
