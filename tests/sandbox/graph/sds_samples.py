"""Microsoft's SDS sample folders (``../shared/sds-samples``) and what SDS makes of each,
counted from the files themselves (SDS rules: "SDS V2.1 CSV File Format", "Default List of
Values", learn.microsoft.com/schooldatasync)."""

from __future__ import annotations

import csv
from pathlib import Path

from tests.conftest import SDS_SAMPLES
from tests.fixtures.graph import sample_format

SAMPLE_FOLDERS = sorted(p.name for p in SDS_SAMPLES.iterdir() if p.is_dir())
SCHOOL_TYPES = {"school", "college", "department"}


def csv_rows(folder: Path, name: str) -> list[dict[str, str]]:
    with (folder / name).open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def expected_counts(name: str) -> dict[str, int]:
    """What SDS creates from a sample folder, counted from its files: every person, section and
    enrollment row for classic and UK files; for v2 and v2.1, students (role student) and
    teachers (teacher, professor), schools (org type school, college or department), classes,
    and enrollments of those people as student, teacher or professor."""
    folder = SDS_SAMPLES / name
    if sample_format(name) in ("sds-classic", "sds-uk"):
        return {
            "schools": len(csv_rows(folder, "School.csv")),
            "students": len(csv_rows(folder, "Student.csv")),
            "teachers": len(csv_rows(folder, "Teacher.csv")),
            "classes": len(csv_rows(folder, "Section.csv")),
            "enrollments": len(csv_rows(folder, "StudentEnrollment.csv"))
            + len(csv_rows(folder, "TeacherRoster.csv")),
        }
    role_rows = csv_rows(folder, "roles.csv") if (folder / "roles.csv").is_file() else None
    roles: dict[str, set[str]] = {}
    for row in role_rows if role_rows is not None else csv_rows(folder, "users.csv"):
        user = row["userSourcedId"] if role_rows is not None else row["sourcedId"]
        roles.setdefault(user, set()).add(row["role"].lower())
    kinds = {
        user: "student" if "student" in r else "teacher" if r & {"teacher", "professor"} else ""
        for user, r in roles.items()
    }
    schools = [o for o in csv_rows(folder, "orgs.csv") if o["type"] in SCHOOL_TYPES]
    enrolled = [
        e
        for e in csv_rows(folder, "enrollments.csv")
        if kinds.get(e["userSourcedId"])
        and e["role"].lower() in {"student", "teacher", "professor"}
    ]
    return {
        "schools": len(schools),
        "students": list(kinds.values()).count("student"),
        "teachers": list(kinds.values()).count("teacher"),
        "classes": len(csv_rows(folder, "classes.csv")),
        "enrollments": len(enrolled),
    }
