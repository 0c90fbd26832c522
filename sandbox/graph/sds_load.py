"""Load School Data Sync CSV folders into a tenant, as SDS would sync them, with a report.

Formats (Microsoft's names): ``sds-classic`` (SDS v1: ``School.csv``, ``Section.csv``,
``Student.csv``, ``Teacher.csv``, ``StudentEnrollment.csv``, ``TeacherRoster.csv``),
``sds-uk`` (the same files with the UK column names: ``DfE Number``, ``ID``,
``School DfE Number``, ``Section ID``, ``Postal Code``), and ``sds-v2`` / ``sds-v2.1`` (see
``sds_v2``). Classic required fields are those of Microsoft's minimum-attribute sample: the ids,
the school's ``Name``, people's ``Username`` and the ``Section Name``.

Every folder is validated before anything reaches the tenant, as SDS validates a sync: a row
with an empty required field, a repeated id or username, a school that is not in the school
file, or an enrollment of an unknown section or person is rejected and creates nothing; a bad
optional field (a date or e-mail that is not one) is dropped with a warning. Dates come out as
``YYYY-MM-DD`` whatever the CSV held (``7/1/2017`` is 2017-07-01). Passwords are never read.

Failure policy: a missing file or column raises ``ValueError`` naming it; with ``strict`` any
rejected row raises ``ValueError`` (before the tenant is touched); otherwise the load goes on
without the rejected rows, as SDS does, and the ``ImportReport`` says what happened.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.graph.sds_csv import CsvFolder, ImportReport, Row
from sandbox.graph.sds_objects import STUDENT, TEACHER, add_class, add_person, add_school, enroll
from sandbox.graph.store import DirObject, School, Tenant

UK_COLUMNS: dict[str, dict[str, str]] = {
    "School.csv": {"SIS ID": "DfE Number", "Zip": "Postal Code"},
    **{
        name: {"SIS ID": "ID", "School SIS ID": "School DfE Number"}
        for name in ("Section.csv", "Student.csv", "Teacher.csv")
    },
    **{
        name: {"Section SIS ID": "Section ID", "SIS ID": "ID"}
        for name in ("StudentEnrollment.csv", "TeacherRoster.csv")
    },
}
PEOPLE_FILES = (("Student.csv", STUDENT), ("Teacher.csv", TEACHER))
ENROLLMENT_FILES = (("StudentEnrollment.csv", STUDENT), ("TeacherRoster.csv", TEACHER))
TERM_COLUMNS = {"externalId": "Term SIS ID", "displayName": "Term Name"}
COURSE_COLUMNS = {
    "externalId": "Course SIS ID",
    "displayName": "Course Name",
    "courseNumber": "Course Number",
    "description": "Course Description",
    "subject": "Course Subject",
}


@dataclass
class Plan:
    """A validated folder: what to create, in order, once every row has been checked."""

    schools: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    people: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (key, person)
    classes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (key, class)
    enrollments: list[tuple[str, str, bool]] = field(default_factory=list)  # class, person

    def apply(self, tenant: Tenant) -> dict[str, int]:
        """Create everything in the tenant; the counts created."""
        schools: dict[str, School] = {}
        for sis_id, name, extra in self.schools:
            schools[sis_id] = add_school(tenant, sis_id, name, **extra)
        people: dict[str, DirObject] = {}
        for key, person in self.people:
            school_ids = person.pop("school_ids")
            people[key] = add_person(tenant, schools=[schools[s] for s in school_ids], **person)
        classes: dict[str, DirObject] = {}
        for key, klass in self.classes:
            school_id = klass.pop("school_id")
            classes[key] = add_class(tenant, school=schools[school_id], **klass)
        for class_key, person_key, teacher in self.enrollments:
            enroll(tenant, classes[class_key], people[person_key], teacher=teacher)
        roles = [person["role"] for _, person in self.people]
        return {
            "schools": len(schools),
            "students": roles.count(STUDENT),
            "teachers": roles.count(TEACHER),
            "classes": len(classes),
            "enrollments": len(self.enrollments),
        }


def check_username(
    files: CsvFolder, row: Row, username: str, taken: dict[str, Row], column: str
) -> bool:
    """Whether ``username`` is free in this load (letter case aside); rejects the row if not."""
    first = taken.setdefault(username.lower(), row)
    if first is not row:
        files.reject(
            row, f"{column} '{username}' is already used by {first.file} line {first.line}"
        )
        return False
    return True


def check_enrollments(
    files: CsvFolder,
    rows: Iterable[tuple[Row, str, str, bool | None]],
    classes: set[str],
    people: dict[str, str],
    *,
    class_column: Callable[[Row], str],
    person_column: Callable[[Row], str],
) -> list[tuple[str, str, bool]]:
    """Accepted (class, person, as teacher) for rows of (row, class key, person key, teacher);
    ``people`` maps accepted person keys to a description; ``teacher`` None is a role
    already warned about."""
    accepted: list[tuple[str, str, bool]] = []
    seen: dict[tuple[str, str], int] = {}
    for row, class_key, person_key, teacher in rows:
        if class_key not in classes:
            files.reject(row, f"{class_column(row)} '{class_key}' is not a loaded class")
            continue
        if person_key not in people:
            files.reject(row, f"{person_column(row)} '{person_key}' is not a loaded person")
            continue
        if teacher is None:
            continue
        first = seen.setdefault((class_key, person_key), row.line)
        if first != row.line:
            files.reject(row, f"the same enrollment is on line {first}")
            continue
        accepted.append((class_key, person_key, teacher))
    return accepted


def _classic_plan(files: CsvFolder) -> Plan:
    plan = Plan()
    schools: set[str] = set()
    for row in files.rows("School.csv", ("SIS ID", "Name"), key="SIS ID"):
        extra: dict[str, Any] = {
            "schoolNumber": row.opt("School Number"),
            "principalName": row.opt("Principal Name"),
            "principalEmail": files.email(row, "Principal Secondary Email"),
            "externalPrincipalId": row.opt("Principal SIS ID"),
            "lowestGrade": row.opt("Grade Low"),
            "highestGrade": row.opt("Grade High"),
            "phone": row.opt("Phone"),
            "address": {
                "city": row.opt("City"),
                "countryOrRegion": row.opt("Country"),
                "postalCode": row.opt("Zip"),
                "state": row.opt("State"),
                "street": row.opt("Address"),
            },
        }
        plan.schools.append((row["SIS ID"], row["Name"], extra))
        schools.add(row["SIS ID"])
    people: dict[str, str] = {}
    usernames: dict[str, Row] = {}
    for file, role in PEOPLE_FILES:
        for row in files.rows(file, ("SIS ID", "School SIS ID", "Username"), key="SIS ID"):
            if row["School SIS ID"] not in schools:
                files.reject(row, _unknown_school(files, row))
                continue
            if not check_username(
                files, row, row["Username"], usernames, files.label(file, "Username")
            ):
                continue
            key = f"{role}:{row['SIS ID']}"
            people[key] = role
            student = role == STUDENT
            plan.people.append(
                (
                    key,
                    {
                        "role": role,
                        "sis_id": row["SIS ID"],
                        "school_ids": [row["School SIS ID"]],
                        "username": row["Username"],
                        "given": row.opt("First Name"),
                        "family": row.opt("Last Name"),
                        "grade": row.opt("Grade") if student else None,
                        "number": row.opt("Student Number" if student else "Teacher Number"),
                        "middle": row.opt("Middle Name"),
                        "birth_date": files.date(row, "Birthdate") if student else None,
                        "classic": True,
                    },
                )
            )
    classes: set[str] = set()
    for row in files.rows("Section.csv", ("SIS ID", "School SIS ID", "Section Name"), key="SIS ID"):
        if row["School SIS ID"] not in schools:
            files.reject(row, _unknown_school(files, row))
            continue
        term = {key: row.opt(column) for key, column in TERM_COLUMNS.items()}
        term["startDate"] = files.date(row, "Term StartDate")
        term["endDate"] = files.date(row, "Term EndDate")
        course = {key: row.opt(column) for key, column in COURSE_COLUMNS.items()}
        plan.classes.append(
            (
                row["SIS ID"],
                {
                    "sis_id": row["SIS ID"],
                    "school_id": row["School SIS ID"],
                    "name": row["Section Name"],
                    "number": row.opt("Section Number"),
                    # a term or course the row names neither by id nor by name is none
                    "term": term if term["externalId"] or term["displayName"] else None,
                    "course": course if course["externalId"] or course["displayName"] else None,
                    "classic": True,
                },
            )
        )
        classes.add(row["SIS ID"])
    for file, role in ENROLLMENT_FILES:
        rows = files.rows(file, ("Section SIS ID", "SIS ID"))
        plan.enrollments += check_enrollments(
            files,
            (
                (row, row["Section SIS ID"], f"{role}:{row['SIS ID']}", role == TEACHER)
                for row in rows
            ),
            classes,
            people,
            class_column=lambda r: files.label(r.file, "Section SIS ID"),
            person_column=lambda r: files.label(r.file, "SIS ID"),
        )
    return plan


def _unknown_school(files: CsvFolder, row: Row) -> str:
    column = files.label(row.file, "School SIS ID")
    return f"{column} '{row['School SIS ID']}' is not in School.csv"


def plan_for(fmt: str, folder: Path, report: ImportReport) -> Plan:
    """The validated plan of one folder of format ``fmt``; rejected rows go into ``report``."""
    from sandbox.graph import sds_v2

    if fmt == "sds-classic":
        return _classic_plan(CsvFolder(folder, report))
    if fmt == "sds-uk":
        return _classic_plan(CsvFolder(folder, report, UK_COLUMNS))
    if fmt in sds_v2.FORMATS:
        return sds_v2.plan(fmt, CsvFolder(folder, report))
    raise ValueError(f"unknown SDS format {fmt}")


def load(tenant: Tenant, fmt: str, folder: Path, *, strict: bool = False) -> ImportReport:
    """Validate one SDS CSV folder, then load what SDS would accept; the import report."""
    report = ImportReport(fmt, str(folder))
    plan = plan_for(fmt, folder, report)
    report.rejected.sort(key=lambda p: (p.file, p.line))
    report.warnings.sort(key=lambda p: (p.file, p.line))
    if strict and report.rejected:
        raise ValueError(
            f"{fmt} folder {folder}: {len(report.rejected)} rows rejected, nothing loaded "
            f"(strict); first: {report.rejected[0]}"
        )
    report.created = plan.apply(tenant)
    return report
